"""What a model may ask for before onnxviz refuses it. Every field can be relaxed by the user."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields

from ..errors import OptionError
from .memory import GiB, available_memory

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


@dataclass(frozen=True)
class Limits:
    """Budgets for loading and running one model (sizes in bytes, times in seconds)."""

    max_file_bytes: int = 2 * GiB  # the .onnx itself, and the model once external data is inlined (protobuf's cap)
    max_tensor_bytes: int = 4 * GiB  # any one tensor: declared, or computed by shape inference at batch 1
    max_subgraph_depth: int = 8  # If / Loop / Scan bodies inside bodies
    allowed_domains: frozenset[str] = field(default_factory=frozenset)  # beyond the standard ONNX domains
    isolate: bool = True  # parse and open the model in a worker process first
    load_timeout: float = 300.0
    worker_memory_bytes: int = field(default_factory=lambda: int(0.8 * available_memory()))  # RAM or the cgroup's
    max_run_memory_bytes: int = 4 * GiB  # what one forward or backward pass may add to the process
    run_timeout: float = 300.0  # one forward pass through onnxruntime

    def __post_init__(self):
        domains = self.allowed_domains
        if isinstance(domains, str) or not all(isinstance(d, str) for d in domains):
            raise OptionError(f"allowed_domains takes a set of domain names, e.g. {{'com.microsoft'}}, not {domains!r}")
        object.__setattr__(self, "allowed_domains", frozenset(domains))
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("allowed_domains", "isolate"):
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            floor = 0 if f.name == "max_subgraph_depth" else 1e-9
            whole = f.type != "int" or (number and value == int(value))
            if not number or not math.isfinite(value) or value < floor or not whole:
                kind = "integer" if f.type == "int" else "number"
                raise OptionError(f"Limits({f.name}={value!r}): a positive {kind} is needed (limits can be raised, "
                                  "not switched off)")
        if not isinstance(self.isolate, bool):
            raise OptionError(f"Limits(isolate={self.isolate!r}): True or False")

    @property
    def domains(self) -> frozenset[str]:
        return STANDARD_DOMAINS | self.allowed_domains


_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "M": 2**20, "MB": 2**20, "G": GiB, "GB": GiB, "T": 2**40, "TB": 2**40}


def parse_size(text: str | int) -> int:
    """'512MB', '4GB', '1.5G' or a number of bytes -> bytes (binary units)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match and match.group(2).upper().replace("IB", "B")
    if not match or unit not in _UNITS:
        raise OptionError(f"{text!r} is not a size; write e.g. 512MB, 4GB or a number of bytes")
    return int(float(match.group(1)) * _UNITS[unit])
