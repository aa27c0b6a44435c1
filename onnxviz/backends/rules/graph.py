"""The mechanism: a copy of the converted fx graph whose chosen modules run a rule's backward instead of autograd's.
Each chosen module is wrapped (RuleModule); its forward is the module's own, its backward the rule's."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn


@dataclass(frozen=True)
class Reference:
    """A module's inputs and output on the reference batch (rules that compare, as DeepLIFT's)."""

    inputs: tuple
    output: torch.Tensor


class Rule:
    """A modified backward: the gradients (or relevances) of a module's inputs from its output's."""

    def backward(self, module: nn.Module, inputs: tuple, output: torch.Tensor, grad: torch.Tensor,
                 reference: Reference | None) -> tuple:
        raise NotImplementedError


@dataclass
class Layer:
    """What a rule set sees of one module call: its ONNX op, the module, and which arguments carry the input."""

    index: int
    op: str | None
    module: nn.Module
    variable: tuple[int, ...]
    node: fx.Node


Assign = Callable[[fx.Graph, dict[str, Any], list[Layer]], None]


def vjp(module: Callable[..., torch.Tensor], inputs: tuple, grad: torch.Tensor) -> tuple:
    """Autograd's own backward of `module` at `inputs` (None for arguments that are not floating tensors)."""
    leaves = tuple(a.detach().requires_grad_() if _differentiable(a) else a for a in inputs)
    with torch.enable_grad():
        out = module(*leaves)
        wanted = [a for a in leaves if _differentiable(a)]
        found = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True))
    return tuple(next(found) if _differentiable(a) else None for a in leaves)


def _differentiable(a: object) -> bool:
    return isinstance(a, torch.Tensor) and a.is_floating_point()


class _Apply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rule: Rule, module: nn.Module, reference: Reference | None, *args):
        out = module(*args)
        ctx.rule, ctx.module, ctx.reference = rule, module, reference
        ctx.is_tensor = [isinstance(a, torch.Tensor) for a in args]
        ctx.others = [a for a in args if not isinstance(a, torch.Tensor)]
        ctx.save_for_backward(*[a for a in args if isinstance(a, torch.Tensor)], out)
        return out

    @staticmethod
    def backward(ctx, grad):
        *tensors, out = ctx.saved_tensors
        tensor_iter, other_iter = iter(tensors), iter(ctx.others)
        args = tuple(next(tensor_iter) if is_tensor else next(other_iter) for is_tensor in ctx.is_tensor)
        with torch.enable_grad():
            grads = ctx.rule.backward(ctx.module, args, out, grad, ctx.reference)
        return (None, None, None, *grads)


class RuleModule(nn.Module):
    """`module` whose backward is `rule`'s."""

    def __init__(self, module: nn.Module, rule: Rule):
        super().__init__()
        self.inner = module
        self.rule = rule
        self.recording = False
        self.reference: Reference | None = None

    def forward(self, *args):
        if self.recording:
            out = self.inner(*args)
            self.reference = Reference(args, out)
            return out
        reference, self.reference = self.reference, None  # used once: the next batch records its own
        return _Apply.apply(self.rule, self.inner, reference, *args)


@contextmanager
def recording(view: nn.Module) -> Iterator[None]:
    """Within: the view's rule modules keep their inputs and output (the reference pass)."""
    wrapped = [m for m in view.modules() if isinstance(m, RuleModule)]
    for m in wrapped:
        m.recording = True
    try:
        yield
    finally:
        for m in wrapped:
            m.recording = False


def with_rules(graph: fx.Graph, module: nn.Module, op_of: Callable[[nn.Module], str | None],
               assign: Assign) -> dict[str, Any]:
    """The root (target -> module or tensor) for a GraphModule on `graph`, after `assign` has wrapped the modules
    that take rules (it may also rewrite the graph, as canonizers do)."""
    targets = {n.target for n in graph.nodes if n.op in ("call_module", "get_attr")}
    root: dict[str, Any] = {str(t): operator.attrgetter(str(t))(module) for t in targets}
    variable: set[fx.Node] = set()
    layers: list[Layer] = []
    for node in graph.nodes:
        if node.op == "placeholder" or any(a in variable for a in node.all_input_nodes):
            variable.add(node)
        if node.op == "call_module":
            inner = root[str(node.target)]
            carried = tuple(i for i, a in enumerate(node.args) if a in variable)
            layers.append(Layer(len(layers), op_of(inner), inner, carried, node))
    assign(graph, root, layers)
    return root


def wrap(root: dict[str, Any], layer: Layer, rule: Rule) -> None:
    root[str(layer.node.target)] = RuleModule(layer.module, rule)
