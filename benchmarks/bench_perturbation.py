"""finite_difference and rise on resnet18 (224x224, one image) against the onnxruntime floor (queries x
batched time per image), in images/s; and RISE against the naive loop that opens a new onnxruntime session
from the file for every call (as DIANNA's runner does), at equal masks, with DIANNA's default of 100 inputs
per call and with one input per call; and against DIANNA itself when it is installed
(`pip install dianna`), at equal masks (p_keep given) and at its defaults (p_keep tuned on 900 extra queries).

    python benchmarks/bench_perturbation.py
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from common import best_of, photos, report, resnet18_pair

import onnxviz
from onnxviz.methods.rise import rise_masks

MASKS = 500


def main() -> None:
    _, path = resnet18_pair()
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(1), model)
    target = [int(onnxviz.explain(model, x, "occlusion", window=(224,), progress=False).targets[0])]
    batch = np.repeat(x, 32, axis=0)
    per_image = best_of(lambda: model.ort.run(batch, (model.outputs[0],))) / len(batch)
    rows = [("onnxruntime floor", f"{per_image * 1000:.1f} ms per image at batch 32 ({1 / per_image:.0f} images/s)")]

    queries = 2 * (224 // 16) ** 2
    fd = best_of(lambda: onnxviz.explain(model, x, "finite_difference", target=target, granularity="patch:16",
                                         progress=False), repeat=2)
    rows.append(("finite_difference patch:16", f"{queries} queries in {fd:.2f} s = {queries / fd:.0f} images/s, "
                                               f"{queries * per_image / fd:.0%} of the floor (goal >= 85%)"))
    rise = best_of(lambda: onnxviz.explain(model, x, "rise", target=target, n_masks=MASKS, progress=False), repeat=2)
    rows.append(("rise", f"{MASKS} masks in {rise:.2f} s = {MASKS / rise:.0f} images/s, "
                         f"{MASKS * per_image / rise:.0%} of the floor (goal >= 85%)"))

    masks = rise_masks(MASKS, 7, 0.5, 224, 224, np.random.default_rng(0))

    def naive(per_call: int) -> np.ndarray:
        masked = (x * masks[:, None]).astype(np.float32)  # materialized up front, as DIANNA does
        scores = []
        for start in range(0, MASKS, per_call):
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # a session per call
            out = session.run(None, {session.get_inputs()[0].name: masked[start : start + per_call]})[0]
            scores.append(out[:, target[0]])
        return np.tensordot(np.concatenate(scores), masks, axes=1)

    for per_call in (100, 1):
        slow = best_of(lambda p=per_call: naive(p), repeat=1, warmup=0)
        rows.append((f"rise vs a session per call of {per_call}",
                     f"naive {slow:.2f} s, onnxviz {rise:.2f} s -> {slow / rise:.2f}x (goal >= 3x)"))
    rows += _dianna_rows(path, x[0], target[0], rise)
    report(rows)


def _dianna_rows(path, image: np.ndarray, target: int, ours: float) -> list[tuple[str, str]]:
    try:
        import dianna
    except ImportError:
        return [("rise vs DIANNA", "skipped: pip install dianna")]
    rows = []
    for label, extra in (("equal masks", {"p_keep": 0.5}), ("DIANNA defaults", {})):
        def run(extra=extra):
            dianna.explain_image(str(path), image, method="RISE", labels=[target], n_masks=MASKS, axis_labels=
                                 {0: "channels"}, **extra)
        slow = best_of(run, repeat=1, warmup=0)
        rows.append((f"rise vs DIANNA {dianna.__version__}, {label}",
                     f"DIANNA {slow:.2f} s, onnxviz {ours:.2f} s -> {slow / ours:.2f}x"))
    return rows


if __name__ == "__main__":
    main()
