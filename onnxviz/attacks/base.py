"""The attack plugin interface: a Method of family "attack" that returns adversarial images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import MethodError
from ..method import Method

if TYPE_CHECKING:
    from .oracle import Oracle


class Attack(Method):
    """Subclass, declare `name`, `requires` ("gradients" for white-box, "forward" for black-box), `paper`
    and `Options`, and write `attack`. Register it under `onnxviz.methods` like any method; run it with
    `onnxviz.attack` or `onnxviz attack`. Budgets (`eps`, `max_queries`) are the attack's options."""

    family: ClassVar[str] = "attack"
    output: ClassVar[str] = "image"
    decision_based: ClassVar[bool] = False  # uses predicted labels only (oracle.decide)

    def attack(self, oracle: Oracle, opts: Any) -> np.ndarray:
        """Adversarial versions of `oracle.images`: same shape, values in [0, 1]."""
        raise NotImplementedError(f"{type(self).__name__} must implement attack(oracle, opts)")

    def explain(self, ctx, x, opts):
        raise MethodError(f"{self.name} is an attack, not an explanation: use onnxviz.attack(...) or "
                          f"`onnxviz attack MODEL IMAGE -m {self.name}`")
