"""Execution backends: onnxruntime (forward, what production runs) and torch via onnx2torch (autograd)."""
