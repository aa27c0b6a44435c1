"""Exported GELU fused back into one call in the converted graph.

Exporters without a Gelu operator (the legacy TorchScript exporter, opset < 20; tf2onnx) write the exact GELU as
x * 0.5 * (1 + erf(x / sqrt 2)): five converted modules whose backward costs a ViT a tenth of its gradient pass.
`fuse_gelu` replaces each such chain by `torch.nn.functional.gelu` (the same function, to float rounding) where
nothing else reads its inner tensors. Only for the standard backward: rule sets (DeepLIFT, LRP) act on the
elementwise nodes themselves. GELU: Hendrycks & Gimpel, https://arxiv.org/abs/1606.08415
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce

from .torch_import import import_torch

OpType = Callable[[object], "str | None"]  # converted module -> its ONNX operator


class _Chain:
    """Reads the fx graph of a converted module: each node's ONNX operator and its constant operands."""

    def __init__(self, root, op_type: OpType):
        self.root, self._op_type = root, op_type

    def op(self, node) -> str | None:
        if node.op != "call_module":
            return None
        return self._op_type(self.root.get_submodule(node.target))

    def constant(self, node) -> float | None:
        """The value of a scalar (or one-element vector: broadcasting it keeps the other operand's shape) operand
        that is an initializer or a Constant node, else None."""
        if getattr(node, "op", None) == "get_attr":
            value = reduce(getattr, node.target.split("."), self.root)
        elif getattr(node, "op", None) == "call_module" and self.op(node) == "Constant":
            value = getattr(self.root.get_submodule(node.target), "value", None)
        else:
            return None
        is_float = getattr(value, "is_floating_point", lambda: False)()
        return float(value.reshape(-1)[0]) if is_float and value.numel() == 1 and value.dim() <= 1 else None

    def is_constant(self, node, expected: float) -> bool:
        value = self.constant(node)
        return value is not None and math.isclose(value, expected, rel_tol=1e-4)

    def other(self, node, operand):
        """The operand of binary `node` that is not `operand` (None when `operand` is not one of its two)."""
        first, second = node.args[:2]
        return second if first is operand else first if second is operand else None

    def only_user(self, node, op_type: str):
        """The single reader of `node` when it is an `op_type` node, else None."""
        users = list(node.users)
        return users[0] if len(users) == 1 and self.op(users[0]) == op_type else None


def _erf_input(chain: _Chain, erf):
    """x when erf's operand is x / sqrt 2 or x * (1 / sqrt 2), else None."""
    scaled = erf.args[0]
    if len(scaled.users) != 1:
        return None
    if chain.op(scaled) == "Div" and chain.is_constant(scaled.args[1], math.sqrt(2)):
        return scaled.args[0]
    if chain.op(scaled) == "Mul":
        for x, c in (scaled.args[:2], scaled.args[1::-1]):
            if chain.is_constant(c, 1 / math.sqrt(2)):
                return x
    return None


def _gelu_output(chain: _Chain, erf, x):
    """The node computing x * 0.5 * (1 + erf) in any grouping of the product, else None."""
    plus_one = chain.only_user(erf, "Add")
    if plus_one is None or not chain.is_constant(chain.other(plus_one, erf), 1.0):
        return None
    product = chain.only_user(plus_one, "Mul")
    if product is None:
        return None
    factor = chain.other(product, plus_one)
    if factor is x:  # (x * (1 + erf)) * 0.5
        last = chain.only_user(product, "Mul")
        return last if last is not None and chain.is_constant(chain.other(last, product), 0.5) else None
    if chain.is_constant(factor, 0.5):  # x * ((1 + erf) * 0.5)
        last = chain.only_user(product, "Mul")
        return last if last is not None and chain.other(last, product) is x else None
    if chain.op(factor) == "Mul" and len(factor.users) == 1:  # (x * 0.5) * (1 + erf)
        half = chain.other(factor, x)
        return product if half is not None and chain.is_constant(half, 0.5) else None
    return None


def fuse_gelu(graph, root, op_type: OpType) -> int:
    """Rewrite each exported exact-GELU chain of fx `graph` (whose modules live in `root`) as one
    `torch.nn.functional.gelu` call; returns how many. Dead nodes are left for the caller's `eliminate_dead_code`."""
    gelu = import_torch().nn.functional.gelu
    chain = _Chain(root, op_type)
    fused = 0
    for erf in [node for node in graph.nodes if chain.op(node) == "Erf"]:
        x = _erf_input(chain, erf)
        out = _gelu_output(chain, erf, x) if x is not None else None
        if out is None:
            continue
        with graph.inserting_before(out):
            replacement = graph.call_function(gelu, (x,))
        out.replace_all_uses_with(replacement)
        fused += 1
    return fused
