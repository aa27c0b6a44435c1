"""Adversarial attacks: the Attack plugin base, the Oracle they query, the attack verb and its result. Names load
on first use (lazy.exports), so an attack plugin can be listed without loading a model's code."""

from typing import TYPE_CHECKING

from ..lazy import exports

__all__ = ["Attack", "AttackResult", "Oracle", "QueryBudgetError", "Transfer", "attack", "attack_names"]

__getattr__, __dir__ = exports(__name__, {
    ".base": ("Attack",),
    ".oracle": ("Oracle", "QueryBudgetError"),
    ".result": ("AttackResult", "Transfer"),
    ".run": ("attack", "attack_names"),
})

if TYPE_CHECKING:  # what type checkers and IDEs see
    from .base import Attack
    from .oracle import Oracle, QueryBudgetError
    from .result import AttackResult, Transfer
    from .run import attack, attack_names
