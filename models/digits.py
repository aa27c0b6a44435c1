"""The digits CNN: scikit-learn's 8x8 digits upscaled to 32x32, three convs and a global-average-pooling
head (so CAM applies). Seeded, trains in a few seconds on a CPU.

    python -m models.digits        # rewrites onnxviz/data/digits_cnn.onnx and the demo images
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
from sklearn.datasets import load_digits
from torch import nn

from .exports import export

SIZE = 32
DATA = Path(__file__).resolve().parent.parent / "onnxviz" / "data"
DEMO_DIGITS = (0, 3, 5, 8)


def digit_images(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size) float32 in [0, 1] and labels: the 1797 scikit-learn digits, upscaled."""
    digits = load_digits()
    images = np.stack([cv2.resize(im / 16.0, (size, size), interpolation=cv2.INTER_LINEAR) for im in digits.images])
    return images.astype(np.float32), digits.target.astype(np.int64)


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def train(epochs: int = 40, seed: int = 0) -> tuple[DigitsCNN, float]:
    """Train on 80% of the digits; returns the model (eval mode) and its held-out accuracy."""
    torch.manual_seed(seed)
    images, labels = digit_images()
    x, y = torch.from_numpy(images[:, None]), torch.from_numpy(labels)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train_idx, test_idx = order[: int(0.8 * len(x))], order[int(0.8 * len(x)) :]
    net = DigitsCNN()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        perm = train_idx[torch.randperm(len(train_idx))]
        for b in range(0, len(perm), 64):
            idx = perm[b : b + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(x[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
    return net, accuracy


def build(path: str | Path, exporter: str = "legacy") -> tuple[DigitsCNN, Path, float]:
    """Train and export; the ONNX file carries its preprocessing in metadata_props."""
    net, accuracy = train()
    path = export(net, path, exporter, size=SIZE, channels=1)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "onnxviz.preprocessing", json.dumps({"preset": "unit", "size": [SIZE, SIZE]})
    onnx.save(proto, str(path))
    return net, path, accuracy


def write_demo_images(folder: Path = DATA) -> list[Path]:
    """One PNG per demo digit (the first example of each class), at the size the model reads."""
    images, labels = digit_images()
    paths = []
    for digit in DEMO_DIGITS:
        index = int(np.flatnonzero(labels == digit)[0])
        path = folder / f"digit_{digit}.png"
        cv2.imwrite(str(path), (images[index] * 255).round().astype(np.uint8))
        paths.append(path)
    return paths


if __name__ == "__main__":
    DATA.mkdir(parents=True, exist_ok=True)
    _, out, acc = build(DATA / "digits_cnn.onnx")
    write_demo_images()
    print(f"wrote {out} (held-out accuracy {acc:.3f}) and the demo images")
