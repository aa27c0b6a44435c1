"""Layer-wise relevance propagation on the converted graph, with Zennit's rules and composites written from their
formulas: a convolution or dense layer passes relevance R back by one of the rules below; activations pass it
unchanged; average pooling and the sum of two branches split it in proportion to what each input contributed;
other operations (max pooling, reshapes, concatenation) keep their gradient, which routes R without changing it.
A BatchNormalization right after a convolution is already merged into it when the model loads (onnxslim folds it, as
Zennit's canonizer merges it); one left elsewhere passes R unchanged, as does a product with a constant (the Mul /
Div that a folded BatchNormalization or a baked normalization leaves).

Bach et al. 2015, https://doi.org/10.1371/journal.pone.0130140; Montavon et al. 2019 (the rules),
https://doi.org/10.1007/978-3-030-28954-6_10; Anders et al. 2021 (Zennit's composites), https://arxiv.org/abs/2106.13200
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.func import functional_call

from ...backward import Lrp
from .deeplift import ELEMENTWISE
from .graph import Layer, Reference, Rule, vjp, wrap

Params = dict[str, torch.Tensor]
CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
POOLS = ("AveragePool", "GlobalAveragePool")


def stabilize(z: torch.Tensor, eps: float) -> torch.Tensor:
    """z moved away from 0 by eps in its own direction (0 counts as positive)."""
    return z + ((z == 0).to(z) + z.sign()) * eps


def _affine(module: nn.Module) -> nn.Module:
    """The convolution or dense layer itself (onnx2torch wraps asymmetric padding and the layer in a Sequential)."""
    inner = module[-1] if isinstance(module, nn.Sequential) else module
    return inner


def with_parameters(module: nn.Module) -> bool:
    return isinstance(_affine(module), (*CONV, nn.Linear))


def weighted(layer: Layer, constant: Callable[[Any], bool]) -> bool:
    """A convolution or dense layer: a module with weights, or a MatMul / Gemm whose other operands are constants."""
    if layer.variable != (0,):
        return False
    if with_parameters(layer.module):
        return True
    return layer.op in ("MatMul", "Gemm") and all(constant(a) for a in layer.node.args[1:])


class Affine(Rule):
    """A rule on a weighted layer."""

    def params(self, module: nn.Module) -> Params:
        """The layer's parameters (names as in `module`), with a zero bias where it has none."""
        params = {name: p.detach() for name, p in module.named_parameters()}
        weight = next(n for n in params if n.endswith("weight"))
        bias = weight[: -len("weight")] + "bias"
        if bias not in params:
            params[bias] = torch.zeros(params[weight].shape[1 if _transposed(module) else 0]).to(params[weight])
        return params

    def backward(self, module, inputs, output, grad, reference: Reference | None):
        x = inputs[0]
        if with_parameters(module):
            relevance = self.relevance(lambda v, p: functional_call(module, p, (v,)), x, self.params(module), grad)
        else:  # MatMul / Gemm: the weight (and Gemm's bias) are the constant operands
            names = ("weight", "bias")[: len(inputs) - 1]
            params = dict(zip(names, (a.detach() for a in inputs[1:]), strict=True))
            relevance = self.relevance(lambda v, p: module(v, *(p[n] for n in names)), x, params, grad)
        return (relevance, *[None] * (len(inputs) - 1))

    def relevance(self, f: Callable[[torch.Tensor, Params], torch.Tensor], x: torch.Tensor, params: Params,
                  grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _transposed(module: nn.Module) -> bool:
    return isinstance(_affine(module), (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))


def _map(params: Params, weight: Callable[[torch.Tensor], torch.Tensor],
         bias: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Params:
    """Parameters with `weight` applied to the weights and `bias` to the biases (None: the bias zeroed)."""
    return {name: (weight(p) if name.endswith("weight") else bias(p) if bias is not None else torch.zeros_like(p))
            for name, p in params.items()}


def _back(f, x: torch.Tensor, params: Params, upper: torch.Tensor) -> torch.Tensor:
    """The transposed layer applied to `upper` (the gradient of f(., params) at x, which is linear in x)."""
    return vjp(lambda v: f(v, params), (x,), upper)[0]


def _pos(t: torch.Tensor) -> torch.Tensor:
    return t.clamp(min=0)


def _neg(t: torch.Tensor) -> torch.Tensor:
    return t.clamp(max=0)


class Epsilon(Affine):
    """R_in = x * W^T (R / stabilize(z)): relevance in proportion to each input's share of z = Wx + b."""

    def __init__(self, epsilon: float):
        self.epsilon = epsilon

    def relevance(self, f, x, params, grad):
        return x * _back(f, x, params, grad / stabilize(f(x, params), self.epsilon))


class ZPlus(Affine):
    """Only positive contributions: x+ with W+ (and b+) and x- with W-, normalized by their sum."""

    def __init__(self, stabilizer: float):
        self.stabilizer = stabilizer

    def relevance(self, f, x, params, grad):
        up, down = _map(params, _pos, _pos), _map(params, _neg)
        xp, xn = _pos(x), _neg(x)
        s = grad / stabilize(f(xp, up) + f(xn, down), self.stabilizer)
        return xp * _back(f, xp, up, s) + xn * _back(f, xn, down, s)


class AlphaBeta(Affine):
    """alpha times the positive contributions' share minus beta times the negative ones' (alpha - beta = 1)."""

    def __init__(self, alpha: float, beta: float, stabilizer: float):
        self.alpha, self.beta, self.stabilizer = alpha, beta, stabilizer

    def relevance(self, f, x, params, grad):
        xp, xn = _pos(x), _neg(x)
        pos_b, neg_b = _map(params, _pos, _pos), _map(params, _neg, _neg)
        pos, neg = _map(params, _pos), _map(params, _neg)
        sp = grad / stabilize(f(xp, pos_b) + f(xn, neg), self.stabilizer)
        sn = grad / stabilize(f(xp, neg_b) + f(xn, pos), self.stabilizer)
        return (self.alpha * (xp * _back(f, xp, pos_b, sp) + xn * _back(f, xn, neg, sp))
                - self.beta * (xp * _back(f, xp, neg_b, sn) + xn * _back(f, xn, pos, sn)))


class Gamma(Affine):
    """Positive contributions boosted by gamma: W + gamma W+ where z > 0 (W + gamma W- where z < 0)."""

    def __init__(self, gamma: float, stabilizer: float):
        self.gamma, self.stabilizer = gamma, stabilizer

    def relevance(self, f, x, params, grad):
        g = self.gamma
        up_b = _map(params, lambda w: w + g * _pos(w), lambda b: b + g * _pos(b))
        down_b = _map(params, lambda w: w + g * _neg(w), lambda b: b + g * _neg(b))
        up, down = _map(params, lambda w: w + g * _pos(w)), _map(params, lambda w: w + g * _neg(w))
        xp, xn = _pos(x), _neg(x)
        z = f(x, params)
        sp = (z > 0) * grad / stabilize(f(xp, up_b) + f(xn, down), self.stabilizer)
        sn = (z < 0) * grad / stabilize(f(xp, down_b) + f(xn, up), self.stabilizer)
        return (xp * _back(f, xp, up_b, sp) + xn * _back(f, xn, down, sp)
                + xp * _back(f, xp, down_b, sn) + xn * _back(f, xn, up, sn))


class Flat(Affine):
    """Relevance spread evenly over each output's receptive field (all weights 1, inputs ignored)."""

    def __init__(self, stabilizer: float):
        self.stabilizer = stabilizer

    def relevance(self, f, x, params, grad):
        ones = _map(params, torch.ones_like)
        unit = torch.ones_like(x)
        return _back(f, unit, ones, grad / stabilize(f(unit, ones), self.stabilizer))


class ZBox(Affine):
    """For the input layer, whose inputs lie between `low` and `high`: the contributions measured from the box's
    corner that minimizes the output (Montavon et al. 2017's z^B rule)."""

    def __init__(self, low: tuple[float, ...], high: tuple[float, ...], stabilizer: float):
        self.low, self.high, self.stabilizer = low, high, stabilizer

    def relevance(self, f, x, params, grad):
        shape = (1, -1, *[1] * (x.ndim - 2)) if x.ndim > 2 else (1, -1)
        low = torch.tensor(self.low).to(x).reshape(shape).expand_as(x)
        high = torch.tensor(self.high).to(x).reshape(shape).expand_as(x)
        pos, neg = _map(params, _pos, _pos), _map(params, _neg, _neg)
        s = grad / stabilize(f(x, params) - f(low, pos) - f(high, neg), self.stabilizer)
        return x * _back(f, x, params, s) - low * _back(f, low, pos, s) - high * _back(f, high, neg, s)


class PassOn(Rule):
    """Relevance passes unchanged to the variable input (activations; a batch norm left unmerged)."""

    def __init__(self, position: int):
        self.position = position

    def backward(self, module, inputs, output, grad, reference):
        return tuple(grad if i == self.position else None for i in range(len(inputs)))


class Norm(Rule):
    """Relevance split among the variable inputs in proportion to their share of the output (average pooling, the
    sum of two branches): x_i * d/dx_i of the output, weighted by R / stabilize(output)."""

    def __init__(self, positions: tuple[int, ...], stabilizer: float):
        self.positions, self.stabilizer = positions, stabilizer

    def backward(self, module, inputs, output, grad, reference):
        grads = vjp(module, inputs, grad / stabilize(output, self.stabilizer))
        return tuple(inputs[i] * grads[i] if i in self.positions and grads[i] is not None else None
                     for i in range(len(inputs)))


def _weighted_rule(rules: Lrp, kind: str, first: bool) -> Rule:
    if first and rules.first_rule is not None:
        name = rules.first_rule
    elif rules.rule is not None:
        name = rules.rule
    elif rules.composite == "epsilon_plus_flat":
        name = "flat" if first else "zplus" if kind == "conv" else "epsilon"
    elif rules.composite == "epsilon_gamma_box":
        name = "zbox" if first and kind == "conv" else "gamma" if kind == "conv" else "epsilon"
    else:  # epsilon_alpha2_beta1
        name = "alpha2_beta1" if kind == "conv" else "epsilon"
    return {
        "epsilon": lambda: Epsilon(rules.epsilon),
        "zplus": lambda: ZPlus(rules.stabilizer),
        "alpha2_beta1": lambda: AlphaBeta(2.0, 1.0, rules.stabilizer),
        "gamma": lambda: Gamma(rules.gamma, rules.stabilizer),
        "flat": lambda: Flat(rules.stabilizer),
        "zbox": lambda: ZBox(rules.low, rules.high, rules.stabilizer),
    }[name]()


def assign_lrp(rules: Lrp, graph: fx.Graph, root: dict[str, Any], layers: list[Layer]) -> None:
    variable = {layer.node for layer in layers} | {n for n in graph.nodes if n.op == "placeholder"}

    def constant(arg: Any) -> bool:
        return not isinstance(arg, fx.Node) or (arg.op == "get_attr" and arg not in variable)

    first = True
    for layer in layers:
        if weighted(layer, constant):
            kind = "conv" if isinstance(_affine(layer.module), CONV) else "dense"
            wrap(root, layer, _weighted_rule(rules, kind, first))
            first = False
        elif len(layer.variable) == 1 and (layer.op in ELEMENTWISE or layer.op == "BatchNormalization"
                                           or (layer.op in ("Mul", "Div") and layer.variable == (0,))
                                           or (layer.op == "Mul" and layer.variable == (1,))):
            wrap(root, layer, PassOn(layer.variable[0]))
        elif layer.op in POOLS and layer.variable == (0,):
            wrap(root, layer, Norm((0,), rules.stabilizer))
        elif layer.op in ("Add", "Sum") and len(layer.variable) >= 2:
            wrap(root, layer, Norm(layer.variable, rules.stabilizer))
