"""Guided backpropagation and deconvnet: the backward of every ONNX Relu replaced.

Springenberg et al. 2015, https://arxiv.org/abs/1412.6806 (guided); Zeiler & Fergus 2014, https://arxiv.org/abs/1311.2901
"""

from __future__ import annotations

from typing import Any

from ...backward import BackwardRules, Guided
from .graph import Layer, Rule, wrap


class GuidedRelu(Rule):
    def backward(self, module, inputs, output, grad, reference):
        return (grad.clamp(min=0) * (inputs[0] > 0),)


class DeconvRelu(Rule):
    def backward(self, module, inputs, output, grad, reference):
        return (grad.clamp(min=0),)


def assign_relu(rules: BackwardRules, root: dict[str, Any], layers: list[Layer]) -> None:
    rule = GuidedRelu() if isinstance(rules, Guided) else DeconvRelu()
    for layer in layers:
        if layer.op == "Relu":
            wrap(root, layer, rule)
