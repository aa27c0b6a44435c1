"""Backward rules: which nodes of the converted graph get a modified backward pass, described without torch so that
methods can ask for them (`ctx.grad(x, rules=...)`); the torch side (`backends/rules`) builds them.

A rule set is a frozen, hashable value: the converted graph is rewritten once per set and cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1")
RULES = ("epsilon", "gamma", "alpha2_beta1", "zplus", "flat", "zbox")


@dataclass(frozen=True)
class BackwardRules:
    """Base of the rule sets. `needs_reference`: the rules compare each input with a reference input, which runs
    through the graph first (DeepLIFT)."""

    needs_reference: ClassVar[bool] = False


@dataclass(frozen=True)
class Guided(BackwardRules):
    """Guided backpropagation: ReLUs pass back positive gradients through positive inputs."""


@dataclass(frozen=True)
class Deconv(BackwardRules):
    """Deconvnet: ReLUs pass back positive gradients, whatever the input."""


@dataclass(frozen=True)
class DeepLift(BackwardRules):
    """DeepLIFT's rescale rule on elementwise nonlinearities, Captum's rule on max pooling; each input is paired with
    its reference, and a nonlinearity whose input barely moves (|delta| < eps) keeps its gradient."""

    needs_reference: ClassVar[bool] = True
    eps: float = 1e-10


@dataclass(frozen=True)
class Lrp(BackwardRules):
    """Layer-wise relevance propagation: a composite (the rule per layer kind) or one `rule` for every convolution
    and dense layer; `first_rule` replaces the rule of the first one. `low` / `high`: the first layer's input bounds
    per channel, for the z-box rule."""

    composite: str = "epsilon_plus_flat"
    rule: str | None = None
    first_rule: str | None = None
    epsilon: float = 1e-6
    gamma: float = 0.25
    stabilizer: float = 1e-6
    low: tuple[float, ...] = (0.0,)
    high: tuple[float, ...] = (1.0,)

    def __post_init__(self):
        if self.rule is None and self.composite not in COMPOSITES:
            raise ValueError(f"composite must be one of {', '.join(COMPOSITES)}, not {self.composite!r}")
        for name in ("rule", "first_rule"):
            value = getattr(self, name)
            if value is not None and value not in RULES:
                raise ValueError(f"{name} must be one of {', '.join(RULES)}, not {value!r}")


NAMED: dict[str, BackwardRules | None] = {"standard": None, "guided": Guided(), "deconv": Deconv()}


def resolve(rules: str | BackwardRules | None) -> BackwardRules | None:
    """A rule set from its name ("standard", "guided", "deconv") or itself; None is the plain gradient."""
    if rules is None or isinstance(rules, BackwardRules):
        return rules
    if rules not in NAMED:
        raise ValueError(f"backward rules must be one of {', '.join(NAMED)} or a BackwardRules value, not {rules!r}")
    return NAMED[rules]
