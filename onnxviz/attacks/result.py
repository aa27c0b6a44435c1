"""AttackResult: adversarial images, predictions before and after, norms, cost; saved as PNG/NPZ/JSON."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import save_png, write_bytes_atomic
from ..targets import softmax
from ..viz.attack_figure import attack_figure
from ..viz.notebook import Displayable


@dataclass(frozen=True)
class Transfer:
    """The adversarials evaluated on another model."""

    model_name: str
    before: np.ndarray  # its predictions on the clean images
    after: np.ndarray  # its predictions on the adversarials
    success: np.ndarray  # per image: fooled (left its clean prediction, or reached the target)
    counted: np.ndarray  # per image: the source attack succeeded, so the image counts for the rate

    @property
    def rate(self) -> float:
        """Share of the source's successful adversarials that also fool this model."""
        n = int(self.counted.sum())
        return float((self.success & self.counted).sum() / n) if n else float("nan")


@dataclass(frozen=True)
class AttackResult(Displayable):
    method: str
    options: dict[str, Any]
    model_name: str
    images: np.ndarray  # (N, H, W, C) clean, [0, 1]
    adversarial: np.ndarray  # (N, H, W, C) [0, 1]
    labels: np.ndarray  # the class each image had to leave
    targets: np.ndarray | None  # the class each image had to reach (targeted attacks)
    logits_before: np.ndarray
    logits_after: np.ndarray
    success: np.ndarray
    linf: np.ndarray
    l2: np.ndarray
    queries: np.ndarray  # forward passes the attack spent per image (the engine's clean/final passes excluded)
    iterations: np.ndarray  # gradient evaluations per image (white-box)
    seconds: float
    backend: str
    names: list[str] = field(default_factory=list)
    class_names: list[str] | None = None
    transfers: list[Transfer] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def perturbation(self) -> np.ndarray:
        return self.adversarial - self.images

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if len(self.success) else float("nan")

    @property
    def predictions_before(self) -> np.ndarray:
        return self.logits_before.argmax(axis=1)

    @property
    def predictions_after(self) -> np.ndarray:
        return self.logits_after.argmax(axis=1)

    def class_name(self, index: int) -> str:
        names = self.class_names
        return f"{index} {names[index]}" if names and 0 <= index < len(names) else str(index)

    def top(self, k: int = 5, after: bool = False) -> list[list[tuple[int, float]]]:
        """Per image, the k most probable (class, probability) pairs before (or after) the attack."""
        probs = softmax((self.logits_after if after else self.logits_before).astype(np.float64))
        order = np.argsort(-probs, axis=1)[:, :k]
        return [[(int(c), float(p[c])) for c in row] for row, p in zip(order, probs, strict=True)]

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-friendly record per image."""
        before, after = self.top(), self.top(after=True)
        out = []
        for i in range(len(self.images)):
            row = {
                "image": self.names[i] if i < len(self.names) else str(i),
                "label": self.class_name(int(self.labels[i])),
                "before": [[self.class_name(c), p] for c, p in before[i]],
                "after": [[self.class_name(c), p] for c, p in after[i]],
                "success": bool(self.success[i]), "linf": float(self.linf[i]), "l2": float(self.l2[i]),
                "queries": int(self.queries[i]), "iterations": int(self.iterations[i]),
            }
            if self.targets is not None:
                row["target"] = self.class_name(int(self.targets[i]))
            for t in self.transfers:
                row[f"transfer:{t.model_name}"] = {"prediction": self.class_name(int(t.after[i])),
                                                   "fooled": bool(t.success[i])}
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "options": self.options, "model": self.model_name, "backend": self.backend,
                "success_rate": self.success_rate, "seconds": self.seconds, **self.extras,
                "transfer_rates": {t.model_name: t.rate for t in self.transfers}, "images": self.rows()}

    def _picture(self) -> np.ndarray:
        return self.figure()

    def _caption(self) -> str:
        return (f"{self.method} on {self.model_name}: {int(np.sum(self.success))} of {len(self.success)} fooled "
                f"({self.backend})")

    def summary(self) -> str:
        """A short text table: one line per image, then the totals."""
        lines = []
        for r in self.rows():
            goal = f" -> target {r['target']}" if "target" in r else ""
            lines.append(f"{r['image']}: {r['before'][0][0]} ({r['before'][0][1]:.2f}){goal} => "
                         f"{r['after'][0][0]} ({r['after'][0][1]:.2f})  "
                         f"{'fooled' if r['success'] else 'resisted'}  Linf {r['linf'] * 255:.1f}/255  "
                         f"L2 {r['l2']:.3f}  queries {r['queries']}  steps {r['iterations']}")
        lines.append(f"{self.method}: {self.success.sum()}/{len(self.success)} fooled in {self.seconds:.2f} s "
                     f"({self.backend})")
        lines += [f"transfer to {t.model_name}: {t.rate:.0%} of {int(t.counted.sum())} adversarials" for t in
                  self.transfers]
        return "\n".join(lines)

    def figure(self, scale: float | None = None) -> np.ndarray:
        return attack_figure(self, scale)

    def save(self, out: str | os.PathLike, scale: float | None = None) -> list[Path]:
        """Write attack.png (the figure), adversarial_<i>.png, result.npz (float arrays: an 8-bit PNG rounds
        the perturbation) and result.json into the folder `out`."""
        out = Path(out)
        written = [save_png(out / "attack.png", self.figure(scale))]
        for i, adv in enumerate(self.adversarial):
            written.append(save_png(out / f"adversarial_{i}.png", np.repeat(adv, 3 // adv.shape[-1], axis=-1)))
        buf = io.BytesIO()
        np.savez_compressed(buf, images=self.images, adversarial=self.adversarial, labels=self.labels,
                            logits_before=self.logits_before, logits_after=self.logits_after, success=self.success)
        written.append(write_bytes_atomic(out / "result.npz", buf.getvalue()))
        written.append(write_bytes_atomic(out / "result.json", json.dumps(self.to_dict(), indent=2).encode()))
        return written
