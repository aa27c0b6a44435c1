"""DeepLIFT's rescale rule on the converted graph: each elementwise nonlinearity passes back
grad * (f(x) - f(x_ref)) / (x - x_ref); max pooling follows Captum's rule (the difference routed through both the
input's and the reference's maxima). Every other operation keeps its gradient, which is exact for linear ones.

Shrikumar, Greenside & Kundaje 2017, https://arxiv.org/abs/1704.02685
"""

from __future__ import annotations

from typing import Any

import torch

from ...backward import DeepLift
from .graph import Layer, Reference, Rule, vjp, wrap

# ONNX operators that act element by element on one input (a slope or bounds may be constants)
ELEMENTWISE = frozenset({"Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "Tanh",
                         "Softplus", "Softsign", "HardSwish", "Gelu", "Erf", "Mish", "ThresholdedRelu", "Clip"})


def _keep_gradient_where_still(delta_in: torch.Tensor, eps: float, plain: torch.Tensor,
                               modified: torch.Tensor) -> torch.Tensor:
    return torch.where(delta_in.abs() < eps, plain, modified)


class Rescale(Rule):
    """grad * delta_out / delta_in, or the gradient where the input does not move."""

    def __init__(self, position: int, eps: float, relu: bool = False):
        self.position, self.eps, self.relu = position, eps, relu

    def backward(self, module, inputs, output, grad, reference: Reference | None):
        if reference is None:
            raise RuntimeError("DeepLIFT's rescale rule ran without its reference pass")
        p = self.position
        delta_in = inputs[p] - reference.inputs[p]
        plain = ((grad * (inputs[p] > 0),) if self.relu else vjp(module, inputs, grad))  # Relu: no second forward
        rescaled = grad * (output - reference.output) / delta_in
        return tuple(_keep_gradient_where_still(delta_in, self.eps, g, rescaled) if i == p else None
                     for i, g in enumerate(plain))


class MaxPoolRule(Rule):
    """Captum's max-pool rule: with m = max(y, y_ref), the share m - y_ref goes back through the input's maxima and
    y - m through the reference's, both divided by the input's change."""

    def __init__(self, eps: float):
        self.eps = eps

    def backward(self, module, inputs, output, grad, reference: Reference | None):
        if reference is None:
            raise RuntimeError("DeepLIFT's max-pool rule ran without its reference pass")
        x, x_ref = inputs[0], reference.inputs[0]
        y, y_ref = output, reference.output
        top = torch.maximum(y, y_ref)
        (through_input,) = vjp(module, (x,), grad * (top - y_ref))
        (through_reference,) = vjp(module, (x_ref,), grad * (y - top))
        (plain,) = vjp(module, (x,), grad)
        delta_in = x - x_ref
        return (_keep_gradient_where_still(delta_in, self.eps, plain, (through_input + through_reference) / delta_in),)


def assign_deeplift(rules: DeepLift, root: dict[str, Any], layers: list[Layer]) -> None:
    for layer in layers:
        if len(layer.variable) != 1:
            continue
        if layer.op in ELEMENTWISE:
            wrap(root, layer, Rescale(layer.variable[0], rules.eps, relu=layer.op == "Relu"))
        elif layer.op == "MaxPool" and layer.variable == (0,) and len(layer.node.args) == 1:
            wrap(root, layer, MaxPoolRule(rules.eps))
