"""How much memory this process may use: physical RAM, the container's cgroup limit and the caller's own
RLIMIT_AS. onnxviz only ever lowers a soft limit, and never below what the caller already has."""

from __future__ import annotations

import os
from pathlib import Path

GiB = 2**30
_UNLIMITED = 1 << 62  # cgroup v1 writes 9223372036854771712 for "no limit"


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * GiB


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED else None


def cgroup_limit(root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")) -> int | None:
    """The smallest memory limit of this process's cgroup and its ancestors (v2 memory.max, v1
    memory.limit_in_bytes), looked up both under the cgroup's path and at the mount root (containers often
    show "/" as their own cgroup); None when there is none."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    candidates: list[Path] = []
    for line in lines:
        _, controllers, path = ([*line.split(":", 2), "", ""])[:3]
        rel = Path(path.lstrip("/") or ".")
        if controllers == "":  # v2 unified hierarchy
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        folder = base / rel
        while True:
            candidates.append(folder / name)
            if folder == base:
                break
            folder = folder.parent
        candidates.append(base / name)
    limits = [v for v in (_read_limit(p) for p in dict.fromkeys(candidates)) if v is not None]
    return min(limits) if limits else None


def available_memory() -> int:
    """Physical RAM, or the container's limit when that is smaller."""
    limit = cgroup_limit()
    ram = physical_memory()
    return min(ram, limit) if limit else ram


def address_space_limit() -> int | None:
    """The caller's soft RLIMIT_AS in bytes (ulimit -v), or None when unlimited or unknown."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def lower_address_space(limit: int) -> int:
    """Lower this process's soft RLIMIT_AS to `limit`, or keep the caller's when it is already lower (the hard
    limit is never touched, so nothing is ever raised). Returns the soft limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    bound = [v for v in (soft, hard) if v != resource.RLIM_INFINITY]
    new = min([limit, *bound])
    if new != soft:
        resource.setrlimit(resource.RLIMIT_AS, (new, hard))
    return new
