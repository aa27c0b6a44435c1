"""What a model may ask for before onnxviz refuses it. Every field can be relaxed by the user."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..errors import OptionError

GiB = 2**30
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * GiB


@dataclass(frozen=True)
class Limits:
    """Budgets for one model load (sizes in bytes, time in seconds)."""

    max_file_bytes: int = 2 * GiB  # the .onnx itself, and the model once external data is inlined (protobuf's cap)
    max_tensor_bytes: int = 4 * GiB  # any one tensor: declared, or computed by shape inference at batch 1
    max_subgraph_depth: int = 8  # If / Loop / Scan bodies inside bodies
    allowed_domains: frozenset[str] = field(default_factory=frozenset)  # beyond the standard ONNX domains
    isolate: bool = True  # parse and open the model in a worker process first
    load_timeout: float = 300.0
    worker_memory_bytes: int = field(default_factory=lambda: int(0.8 * _physical_memory()))

    def __post_init__(self):
        object.__setattr__(self, "allowed_domains", frozenset(self.allowed_domains))

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


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
