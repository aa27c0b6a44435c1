"""Hostile-model defences: our own validator, confined external data, size budgets, an isolated loader."""

from .limits import Limits
from .open import open_model

__all__ = ["Limits", "open_model"]
