"""How many of onnx's operator test cases convert and run correctly through onnx2torch, before and after
onnxviz's compat layer, by op. Each side runs in its own process (registration is global).

    python benchmarks/op_coverage.py            # summary + the ops that changed
    python benchmarks/op_coverage.py --all      # every op
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _side(use_compat: bool) -> dict:
    summary = "print(json.dumps({op: [ok for _, ok, _ in v] for op, v in r.items()}))"
    code = f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from tests.op_cases import coverage; " \
           f"r = coverage({use_compat!r}); {summary}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    before, after = _side(False), _side(True)
    total = sum(len(v) for v in after.values())
    passed_before = sum(sum(v) for v in before.values())
    passed_after = sum(sum(v) for v in after.values())
    print(f"onnx node test cases: {total}; passing through onnx2torch: {passed_before} before compat.py, "
          f"{passed_after} after (+{passed_after - passed_before})")
    print(f"{'op':<28}{'before':>8}{'after':>8}{'cases':>8}")
    for op in sorted(after):
        b, a = sum(before.get(op, [])), sum(after[op])
        if a != b or "--all" in sys.argv:
            print(f"{op:<28}{b:>8}{a:>8}{len(after[op]):>8}")


if __name__ == "__main__":
    main()
