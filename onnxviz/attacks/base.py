"""The attack plugin kind: a class that turns images into adversarial images through the Oracle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..plugin import Plugin

if TYPE_CHECKING:
    from .oracle import Oracle


class Attack(Plugin):
    """Subclass, declare `name`, `requires` ("gradients" for white-box, "forward" for black-box), `paper`
    and `Options`, and write `attack`. Register it under the entry-point group `onnxviz.attacks`; run it with
    `onnxviz.attack` or `onnxviz attack`. Budgets (`eps`, `max_queries`) are the attack's options."""

    kind: ClassVar[str] = "attack"
    families: ClassVar[tuple[str, ...]] = ("attack",)
    family: ClassVar[str] = "attack"
    decision_based: ClassVar[bool] = False  # uses predicted labels only (oracle.decide)

    @classmethod
    def problems(cls) -> list[str]:
        found = super().problems()
        if cls.attack is Attack.attack:
            found.append("it does not implement attack(oracle, opts)")
        return found

    def attack(self, oracle: Oracle, opts: Any) -> np.ndarray:
        """Adversarial versions of `oracle.images`: same shape, values in [0, 1]."""
        raise NotImplementedError(f"{type(self).__name__} must implement attack(oracle, opts)")
