"""Adversarial attacks: the Attack plugin base, the Oracle they query, the attack verb and its result."""

from .base import Attack
from .oracle import Oracle, QueryBudgetError
from .result import AttackResult, Transfer
from .run import attack, attack_names

__all__ = ["Attack", "AttackResult", "Oracle", "QueryBudgetError", "Transfer", "attack", "attack_names"]
