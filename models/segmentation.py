"""A tiny segmentation network with a known answer: 32x32 grey images holding one bright square (class 1)
and one dark-ringed disk (class 2) on noise (class 0). Seeded; trains in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .exports import export

SIZE = 32


def scenes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 1, 32, 32) float32 in [0, 1], label maps (n, 32, 32) int64)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.3, (n, 1, SIZE, SIZE)).astype(np.float32)
    labels = np.zeros((n, SIZE, SIZE), np.int64)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(n):
        r, c = rng.integers(2, SIZE - 10, size=2)
        images[i, 0, r : r + 8, c : c + 8] = 1.0
        labels[i, r : r + 8, c : c + 8] = 1
        for _ in range(20):  # a disk away from the square
            cr, cc = rng.integers(5, SIZE - 5, size=2)
            disk = (yy - cr) ** 2 + (xx - cc) ** 2 <= 16
            if not (labels[i][disk] == 1).any():
                images[i, 0][disk] = 0.65
                labels[i][disk] = 2
                break
    return images, labels


class TinySegNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=2, dilation=2), nn.ReLU(),
        )
        self.classifier = nn.Conv2d(16, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def train(steps: int = 150, seed: int = 0) -> tuple[TinySegNet, float]:
    """Returns the network (eval mode) and its pixel accuracy on held-out scenes."""
    torch.manual_seed(seed)
    images, labels = scenes(512, seed)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    net = TinySegNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=torch.Generator().manual_seed(seed + step))
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
    net.eval()
    test_images, test_labels = scenes(64, seed + 1)
    with torch.no_grad():
        predicted = net(torch.from_numpy(test_images)).argmax(1).numpy()
    return net, float((predicted == test_labels).mean())


def build(path: str | Path, exporter: str = "legacy") -> tuple[TinySegNet, Path, float]:
    net, accuracy = train()
    return net, export(net, path, exporter, size=SIZE, channels=1), accuracy
