"""Backward rules on the converted graph (torch): the mechanism (graph.py) and the rule families that the
descriptors of `onnxviz.backward` name. Imports torch: the backend imports this package lazily."""

from __future__ import annotations

from ...backward import BackwardRules, Deconv, DeepLift, Guided, Lrp
from .deeplift import assign_deeplift
from .graph import Assign, recording, with_rules
from .lrp import assign_lrp
from .relu import assign_relu

__all__ = ["assigner", "recording", "with_rules"]


def assigner(rules: BackwardRules) -> Assign:
    """The function that gives the graph's layers their rules for this rule set."""
    if isinstance(rules, (Guided, Deconv)):
        return lambda graph, root, layers: assign_relu(rules, root, layers)
    if isinstance(rules, DeepLift):
        return lambda graph, root, layers: assign_deeplift(rules, root, layers)
    if isinstance(rules, Lrp):
        return lambda graph, root, layers: assign_lrp(rules, graph, root, layers)
    raise TypeError(f"no backward rules for {type(rules).__name__}")
