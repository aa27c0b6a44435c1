"""Dataset-scale explanations: onnxviz.batch / `onnxviz batch`, local processes or Ray, resumable."""

from .run import BatchResult, batch

__all__ = ["BatchResult", "batch"]
