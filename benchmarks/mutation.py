"""Mutation testing of the methods, the evaluation metrics, the attacks, the gradient estimator and receptive fields:
mutmut changes one operator, constant or argument at a time and runs the tests that cover it; a mutant the tests
do not notice ("survived") is a wrong version of the code the suite would ship. Prints the score per module and
the survivors (with `--show`, their diffs).

    pip install mutmut
    python benchmarks/mutation.py                        # every group (an hour or more on 2 cores)
    python benchmarks/mutation.py evaluation estimate    # some groups
    python benchmarks/mutation.py methods --sample 40    # a seeded sample of 40 mutants per module
    python benchmarks/mutation.py attacks --only onnxviz/attacks/losses.py onnxviz/attacks/oracle.py   # some modules

Each group runs in a scratch copy of the working tree (mutmut rewrites the code it mutates), with its own
`[tool.mutmut]` section; the repository itself is never touched. Not part of CI: too slow.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# group -> (files to mutate, the tests that cover them)
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    # the hand-built oracles and the sibling matrix; the torchvision reference tests would rebuild resnet18 and
    # mobilenet exports for every mutant
    "methods": (["onnxviz/methods/*"], [
        "tests/test_siblings.py", "tests/test_oracles.py", "tests/test_suite_oracles.py", "tests/test_perturbation.py",
        "tests/test_cam_heads.py", "tests/test_contract_kit.py", "tests/test_rollout.py", "tests/test_reciprocam.py",
        "tests/test_legrad.py", "tests/test_api_misuse.py", "tests/test_tokens.py"]),
    "evaluation": ([f"onnxviz/evaluation/{m}.py" for m in ("faithfulness", "sanity", "agreement", "run")],
                   ["tests/test_evaluate.py", "tests/test_compare.py::test_agreement_measures_equal_their_references"]),
    "compare": (["onnxviz/evaluation/compare.py"], ["tests/test_compare.py"]),  # slow: each test runs two models
    "attacks": (["onnxviz/attacks/*"], ["tests/test_attacks.py", "tests/test_attacks_art.py"]),
    "estimate": (["onnxviz/estimate.py"], ["tests/test_perturbation.py", "tests/test_attacks.py"]),
    "receptive": (["onnxviz/inspect/receptive.py"], ["tests/test_inspect.py"]),
    # target kinds: detection decoding and matching, similarities, values, units (the detection tests build YOLOs)
    "targets": (["onnxviz/targets/*", "onnxviz/attacks/views.py"],
                ["tests/test_detection.py", "tests/test_targets_kinds.py", "tests/test_segmentation.py"]),
    # deployed files: precision, quantization, baked preprocessing, control flow
    "deployed": (["onnxviz/backends/precision.py", "onnxviz/backends/qdq.py", "onnxviz/backends/quantized.py",
                  "onnxviz/baked.py", "onnxviz/backends/specialize.py", "onnxviz/backends/unroll.py"],
                 ["tests/test_precision.py", "tests/test_input_kinds.py", "tests/test_specialize.py"]),
}
STATUS = re.compile(r"^\s*(?P<name>[\w.ǁ]+__mutmut_\d+): (?P<status>.+)$")


def scratch_copy(target: Path) -> None:
    """The tracked files of the working tree (uncommitted edits included), without .git or virtual environments."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def configure(target: Path, mutate: list[str], tests: list[str]) -> None:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    with (target / "pyproject.toml").open("a") as f:
        f.write("\n[tool.mutmut]\n"
                'source_paths = ["onnxviz"]\n'
                f"only_mutate = {toml_list(mutate)}\n"
                f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
                'also_copy = ["tests", "models", "plugins"]\n'
                'process_isolation = "forkserver"\n'  # torch is not fork-safe
                'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q", "-W", "ignore"]\n')


def mutmut(target: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=target, capture_output=True, text=True)
    said = done.stdout + done.stderr
    if done.returncode and args[0] != "run":  # a run returns non-zero when mutants survive: that is its report
        sys.exit(f"mutmut {args[0]} failed ({done.returncode}):\n{said[-2000:]}")
    if "failed to collect stats" in said:  # the unmutated tests fail: say why rather than score nothing
        sys.exit(f"mutmut could not run the tests unmutated:\n{said[-2000:]}")
    return done.stdout


def statuses(target: Path) -> dict[str, str]:
    found = {}
    for line in mutmut(target, "results", "--all", "true").splitlines():
        if match := STATUS.match(line):
            found[match["name"]] = match["status"].strip()
    return found


def run_group(name: str, sample: int | None, seed: int, children: int, show: bool,
              only: list[str] | None = None) -> dict[str, Counter]:
    mutate, tests = GROUPS[name]
    mutate = only or mutate
    with tempfile.TemporaryDirectory(prefix=f"onnxviz-mutation-{name}-") as tmp:
        target = Path(tmp)
        scratch_copy(target)
        configure(target, mutate, tests)
        if sample is None:
            mutmut(target, "run", "--max-children", str(children))
        else:  # generate (a pattern that matches nothing runs none), then run a seeded sample per module
            mutmut(target, "run", "--max-children", str(children), "none-such-mutant")
            by_module = defaultdict(list)
            for mutant in statuses(target):
                by_module[module_of(mutant)].append(mutant)
            rng = random.Random(seed)
            chosen = {m for names in by_module.values() for m in rng.sample(sorted(names), min(sample, len(names)))}
            mutmut(target, "run", "--max-children", str(children), *sorted(chosen))
        found = statuses(target)
        if sample is not None:
            found = {k: v for k, v in found.items() if k in chosen}
        scores: dict[str, Counter] = defaultdict(Counter)
        for mutant, status in found.items():
            scores[module_of(mutant)][status] += 1
        survivors = sorted(m for m, s in found.items() if s == "survived")
        print(f"\n== {name}: {len(found)} mutants")
        for module, counts in sorted(scores.items()):
            print(f"  {module:45s} {score_text(counts)}")
        for mutant in survivors:
            print(f"  survived: {mutant}")
            if show:
                diff = [line for line in mutmut(target, "show", mutant).splitlines()
                        if line[:1] in "+-" and line[:3] not in ("+++", "---")]
                print("\n".join("      " + line for line in diff))
        return scores


def module_of(mutant: str) -> str:
    """onnxviz.methods.rise.x_masks__mutmut_3 -> onnxviz.methods.rise"""
    return mutant.split(".x")[0] if ".x" in mutant else mutant.rsplit(".", 1)[0]


def score_text(counts: Counter) -> str:
    killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    checked = killed + counts["survived"]
    rate = f"{100 * killed / checked:5.1f}%" if checked else "  n/a"
    rest = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("killed", "survived"))
    return f"{rate} killed ({killed}/{checked})" + (f"; {rest}" if rest else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", help=f"groups to mutate: {', '.join(GROUPS)} (default: all)")
    parser.add_argument("--sample", type=int, help="at most this many mutants per module, seeded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--children", type=int, default=2, help="mutants tested in parallel")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--only", nargs="+", metavar="FILE", help="mutate these files instead of the group's (its "
                                                                 "tests still run): a slow group in pieces")
    args = parser.parse_args()
    unknown = sorted(set(args.groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group {', '.join(unknown)}: choose from {', '.join(GROUPS)}")
    if shutil.which("git") is None:
        sys.exit("mutation.py needs git (it copies the tracked files)")
    total: Counter = Counter()
    for group in args.groups or list(GROUPS):
        for counts in run_group(group, args.sample, args.seed, args.children, args.show, args.only).values():
            total.update(counts)
    print(f"\nall: {score_text(total)}")


if __name__ == "__main__":
    main()
