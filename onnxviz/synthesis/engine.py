"""The synthesis engine: differentiable image -> model input (the model's preprocessing in torch) and
activations of any layers, computed on the graph cut after the deepest one (the torch backend's views
compute nothing beyond the tensors asked for)."""

from __future__ import annotations

from ..backends.torch_import import import_torch
from ..layers import Layer
from ..model import Model
from ..preprocess import Preprocessing
from ..progress import Bar
from ..runner import Runner
from ..targets import Target


class Engine:
    """What a synthesis method sees: images are torch tensors (B, C, H, W), RGB (or grey) in [0, 1]."""

    def __init__(self, model: Model, preprocessing: Preprocessing, seed: int = 0, progress: bool = True):
        torch = import_torch()
        self.model = model
        self.backend = model.gradient_backend()
        self.device = self.backend.device
        self.pre = preprocessing
        self.seed = seed
        # the whole batch at once (a fixed-batch model gets its batch size at a time; gradients flow across)
        self.runner = Runner(model, 1 << 30, seed, progress)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.channels = model.input.channels or 3
        self.size = model.input_size
        mean, std = preprocessing._stats()
        self._mean = torch.as_tensor(mean, device=self.device).reshape(1, -1, 1, 1)
        self._std = torch.as_tensor(std, device=self.device).reshape(1, -1, 1, 1)
        self.logits = model.score_tensor(Target())[0]

    def layer(self, name: str) -> Layer:
        return self.model.layer(name)

    def model_input(self, images):
        """(B, C, H, W) [0, 1] images -> the model's input tensor (preprocessing in torch: differentiable)."""
        x = images.flip(1) if self.pre.channel_order == "BGR" and images.shape[1] == 3 else images
        x = (x * self.pre.scale - self._mean) / self._std
        return self.model.input.axes.from_channels_first(x)

    def tensors(self, images, names: tuple[str, ...]) -> list:
        """The named tensors for a batch of images, each channels-first (B, C, ...) whatever its layout. A
        model with a fixed batch gets its batch size at a time (the pieces are joined, gradients flow)."""
        x = self.model_input(images)
        names = tuple(names)
        outs = self.runner.chunked(lambda piece: list(self.backend.forward(piece, names)), (x,), names=names)
        return [self._channels_first(name, t) for name, t in zip(names, outs, strict=True)]

    def _channels_first(self, name: str, t):
        if name == self.logits:
            return t
        layer = self.layer(name)
        return layer.axes.to_channels_first(t) if layer.layout and t.ndim == layer.axes.rank else t

    def random(self, *shape):
        torch = import_torch()
        return torch.rand(*shape, generator=self.generator).to(self.device)

    def randn(self, *shape):
        torch = import_torch()
        return torch.randn(*shape, generator=self.generator).to(self.device)

    def randint(self, low: int, high: int) -> int:
        torch = import_torch()
        return int(torch.randint(low, high, (1,), generator=self.generator))

    def progress(self, total: int, desc: str) -> Bar:
        return self.runner.bar(total, desc, unit="step")
