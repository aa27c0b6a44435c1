"""Image parameterizations: the optimizer moves these parameters, not the pixels.

pixel: one logit per pixel, image = sigmoid(param).
fourier: a spectrum scaled by 1/frequency, inverse-FFT'd, colours decorrelated with ImageNet's colour
covariance, then a sigmoid (Olah et al. 2017, https://distill.pub/2017/feature-visualization/ ; Lucid).
"""

from __future__ import annotations

import math

import numpy as np

from ..backends.torch_import import import_torch

# square root of ImageNet's RGB covariance (its SVD factors): decorrelated -> correlated colours
COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOR_SQRT /= np.linalg.norm(COLOR_SQRT, axis=0).max()


def _logit(p):
    torch = import_torch()
    p = p.clamp(1e-4, 1 - 1e-4)
    return torch.log(p / (1 - p))


class PixelImage:
    def __init__(self, engine, batch: int, init=None, scale: float = 0.01):
        torch = import_torch()
        c, (h, w) = engine.channels, engine.size
        start = _logit(init) if init is not None else scale * engine.randn(batch, c, h, w)
        self.param = torch.nn.Parameter(start.detach().clone(memory_format=torch.contiguous_format))

    def parameters(self) -> list:
        return [self.param]

    def __call__(self):
        return self.param.sigmoid()

    def blur(self, sigma: float) -> None:
        """Replace the image by its Gaussian blur (the "blur every k steps" robustness trick)."""
        torch = import_torch()
        with torch.no_grad():
            self.param.copy_(_logit(gaussian_blur(self.param.sigmoid(), sigma)))


class FourierImage:
    def __init__(self, engine, batch: int, scale: float = 0.01, decay: float = 1.0):
        torch = import_torch()
        c, (h, w) = engine.channels, engine.size
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        freqs = np.sqrt(fy**2 + fx**2)
        self.size = (h, w)
        self.decorrelate = c == 3
        weights = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay
        self.weights = torch.as_tensor(weights, dtype=torch.float32, device=engine.device)
        self.param = torch.nn.Parameter(scale * engine.randn(batch, c, h, w // 2 + 1, 2))
        self.color = torch.as_tensor(COLOR_SQRT, device=engine.device)

    def parameters(self) -> list:
        return [self.param]

    def __call__(self):
        torch = import_torch()
        spectrum = torch.view_as_complex(self.param) * self.weights
        image = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0
        if self.decorrelate:
            image = torch.einsum("bchw,dc->bdhw", image, self.color)
        return image.sigmoid()


def gaussian_blur(images, sigma: float):
    """Per-channel Gaussian blur of (B, C, H, W) images (reflect padding)."""
    torch = import_torch()
    radius = max(1, math.ceil(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = images.shape[1]
    padded = torch.nn.functional.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = torch.nn.functional.conv2d(padded, k.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return torch.nn.functional.conv2d(out, k.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
