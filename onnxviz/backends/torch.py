"""torch backend: the ONNX graph converted once by onnx2torch (eval mode), intermediate tensors exposed
as extra outputs of the fx graph, so gradients wrt any layer need no hooks."""

from __future__ import annotations

import contextlib
import operator
import re
from functools import lru_cache

import numpy as np
import onnx

from ..backward import BackwardRules, resolve
from ..errors import ConversionError
from ..guard.limits import Limits
from ..guard.run import torch_pass
from . import fusion, precision, qdq
from .torch_import import import_torch, torch_device


def _conversion_error(exc: Exception, proto: onnx.ModelProto) -> ConversionError:
    opset = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    match = re.search(r"operation_type='(\w+)', version=(\d+)", str(exc))
    if match:
        what = f"operator {match.group(1)} (schema version {match.group(2)}, model opset {opset.get('ai.onnx')})"
        if match.group(1) in ("If", "Loop", "Scan"):
            what += (" (control flow: an If whose condition depends only on shapes is specialized, but this one reads "
                     "the input's values, or it is a loop)")
    else:
        what = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return ConversionError(
        f"this graph cannot be converted to PyTorch: {what} is not supported by onnx2torch. "
        "Gradient methods need the conversion; forward-only methods (occlusion) still work."
    )


class TorchBackend:
    """One conversion per model; a cheap fx view per requested output set."""

    def __init__(self, proto: onnx.ModelProto, device: str = "cpu", limits: Limits | None = None):
        import_torch()
        self.limits = limits or Limits()
        from onnx2torch import convert

        from . import compat

        compat.register()
        self.device = torch_device(device)
        fused = qdq.fused_operators(proto)
        if fused:
            raise ConversionError(f"this graph runs fused quantized kernels ({', '.join(fused)}: the QOperator "
                                  "format), which have no float counterpart to differentiate; quantize it in the QDQ "
                                  "format (onnxruntime.quantization's quant_format=QuantFormat.QDQ), whose gradients "
                                  "onnxviz takes through fake quantization. Forward-only methods (occlusion, rise, "
                                  "scorecam) still work")
        fixed = compat.fix_graph(qdq.fold_weights(precision.as_float32(proto)))
        try:
            module = convert(fixed, attach_onnx_mapping=True)
        except Exception as exc:  # onnx2torch raises NotImplementedError, KeyError, RuntimeError...
            raise _conversion_error(exc, proto) from exc
        self.module = module.eval().to(self.device)
        self._op_types = {out: node.op_type for node in fixed.graph.node for out in node.output}
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._producers = self._index_outputs()
        self.view = lru_cache(maxsize=16)(self._view)

    def _index_outputs(self) -> dict[str, tuple[object, int, int]]:
        """ONNX tensor name -> (fx node, output index, number of outputs)."""
        index = {}
        for node in self.module.graph.nodes:
            if node.op != "call_module":
                continue
            mapping = getattr(self.module.get_submodule(node.target), "onnx_mapping", None)
            if mapping is None:
                continue
            for i, name in enumerate(mapping.outputs):
                index[name] = (node, i, len(mapping.outputs))
        return index

    def has_tensor(self, name: str) -> bool:
        return name in self._producers

    def op_type(self, module) -> str | None:
        """The ONNX operator a converted module came from (None for modules onnx2torch added itself)."""
        mapping = getattr(module, "onnx_mapping", None)
        return self._op_types.get(mapping.outputs[0]) if mapping is not None and mapping.outputs else None

    def _view(self, outputs: tuple[str, ...], rules: BackwardRules | None = None):
        """A GraphModule sharing our weights that returns `outputs` and computes nothing beyond them; with `rules`
        the nodes they choose get their backward (guided backprop's ReLUs, DeepLIFT, LRP)."""
        torch = import_torch()
        graph = torch.fx.Graph()
        remap: dict = {}
        graph.graph_copy(self.module.graph, remap)
        values = []
        for name in outputs:
            if name not in self._producers:
                raise ConversionError(f"tensor {name!r} has no counterpart in the converted PyTorch graph")
            node, i, n = self._producers[name]
            value = remap[node]
            values.append(graph.call_function(operator.getitem, (value, i)) if n > 1 else value)
        graph.output(tuple(values))
        root: object = self.module
        if rules is None:  # after the outputs exist, so a requested inner tensor keeps its chain unfused
            fusion.fuse_gelu(graph, self.module, self.op_type)
        else:  # after the outputs exist, so a node that is itself an output gets its rule too
            from . import rules as modified  # imports torch

            root = modified.with_rules(graph, self.module, self.op_type, modified.assigner(rules))
        view = torch.fx.GraphModule(root, graph)
        view.graph.eliminate_dead_code()
        view.recompile()
        return view.eval()

    def forward(self, x, outputs: tuple[str, ...], rules: str | BackwardRules | None = None) -> tuple:
        """Run on a torch tensor and return the requested tensors (differentiable), within the memory budget;
        `rules` as `onnxviz.backward.resolve` reads them ("standard", "guided", "deconv" or a rule set)."""
        with self.bounded(x.shape):
            return self.view(outputs, resolve(rules))(x)

    def record_reference(self, reference, outputs: tuple[str, ...], rules: BackwardRules) -> None:
        """Run the reference batch through the view with `rules`, which keep what they compare against (DeepLIFT);
        the next `forward` with the same rules uses it."""
        torch = import_torch()
        from . import rules as modified  # imports torch

        view = self.view(outputs, rules)
        with torch.no_grad(), modified.recording(view):
            view(reference)

    def bounded(self, shape) -> contextlib.AbstractContextManager:
        """The run limits around torch work on a batch of `shape` (forward and backward)."""
        return torch_pass(self.limits, f"the PyTorch pass on {list(shape)}")

    def to_tensor(self, x: np.ndarray, requires_grad: bool = False):
        torch = import_torch()
        t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self.device)
        return t.requires_grad_(requires_grad)
