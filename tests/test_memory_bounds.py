"""Issue 24, part 3: a method's peak memory is bounded by --batch-size, whatever its sample count. Per family, the
sample count goes up 10x and the call's peak may grow by less than 20 %: numpy-side methods measured by tracemalloc
(exact, every numpy allocation), torch-side methods by how far the call raises a fresh process's peak resident
set. The model's activations are large enough (32 channels at 128 x 192) that one unchunked pass would show."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxviz

SIZE = (128, 192)
BATCH = 4


@pytest.fixture(scope="module")
def wide_conv(tmp_path_factory) -> onnxviz.Model:
    rng = np.random.default_rng(0)
    weights = {"W1": rng.normal(0, 0.3, (32, 3, 3, 3)), "W2": rng.normal(0, 0.1, (32, 32, 3, 3)),
               "Wf": rng.normal(0, 0.3, (10, 32))}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *SIZE])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])
    nodes = [helper.make_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "Wf"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "wide", [x], [y],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    path = Path(tmp_path_factory.mktemp("memory")) / "wide_conv.onnx"
    onnx.save(proto, path)
    return onnxviz.load(path, preprocessing="unit")


@pytest.fixture(scope="module")
def image(wide_conv) -> np.ndarray:
    return np.random.default_rng(1).random((1, 3, *SIZE), dtype=np.float32)


def numpy_peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


CHILD = """
import sys
from pathlib import Path
import numpy as np, onnxviz
path, method, option, count, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
model = onnxviz.load(path, preprocessing="unit")
x = np.random.default_rng(1).random((1, *model.input.shape[1:]), dtype=np.float32)
onnxviz.explain(model, x, method, batch_size=batch, progress=False, **{option: 2})  # conversion, sessions, pools
status = lambda key: next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines()
                          if l.startswith(key)) / 1024
try:
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from here
except OSError:
    print("unsupported")
    sys.exit(0)
before = status("VmRSS")
onnxviz.explain(model, x, method, batch_size=batch, progress=False, **{option: count})
print(status("VmHWM") - before)
"""


def resident_peak_mib(path: str, method: str, option: str, count: int) -> float:
    """How far the call raises the resident set above where it started, in a fresh, warmed-up process (MiB): torch's
    allocations are not traced by tracemalloc, and glibc would otherwise keep freed blocks resident and hide a
    peak."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}  # large blocks go back to the system when freed
    done = subprocess.run([sys.executable, "-c", CHILD, path, method, option, str(count), str(BATCH)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    if done.stdout.split()[-1] == "unsupported":
        pytest.skip("this system does not let a process reset its resident high-water mark")
    return float(done.stdout.split()[-1])


NUMPY_SIDE = [("rise", "n_masks", 100), ("lime", "n_samples", 60), ("kernel_shap", "n_samples", 60)]
TORCH_SIDE = [("integrated_gradients", "n_steps", 16), ("smoothgrad", "nt_samples", 4),
              ("gradient_shap", "n_samples", 12)]


@pytest.mark.parametrize(("method", "option", "count"), NUMPY_SIDE)
def test_numpy_side_peak_is_bounded_by_the_batch(wide_conv, image, method, option, count):
    def call(n: int):
        return lambda: onnxviz.explain(wide_conv, image, method, batch_size=BATCH, progress=False,
                                       **{option: n})

    call(count)()  # warm: sessions, caches
    small, large = numpy_peak_mib(call(count)), numpy_peak_mib(call(10 * count))
    assert large < 1.2 * small, f"{method}: {option} {count} -> {small:.1f} MiB, {10 * count} -> {large:.1f} MiB"


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads and resets /proc/self (Linux)")
@pytest.mark.parametrize(("method", "option", "count"), TORCH_SIDE)
def test_torch_side_peak_is_bounded_by_the_batch(wide_conv, method, option, count):
    pytest.importorskip("onnx2torch")
    small = resident_peak_mib(str(wide_conv.source), method, option, count)
    large = resident_peak_mib(str(wide_conv.source), method, option, 10 * count)
    assert small > 20, f"{method}: a chunk of {BATCH} should take tens of MiB here, not {small:.1f}"
    assert large < 1.2 * small, f"{method}: {option} {count} -> {small:.0f} MiB, {10 * count} -> {large:.0f} MiB"


ATTACKS = [("hopskipjump", ("init_evals", "max_evals"), 8, 400),  # probes per gradient estimate
           ("one_pixel", ("population",), 10, 300)]  # candidate images per generation


@pytest.mark.parametrize(("attack", "options", "count", "queries"), ATTACKS)
def test_attack_peak_is_bounded_by_the_batch(wide_conv, attack, options, count, queries):
    photo = np.random.default_rng(2).random((*SIZE, 3), dtype=np.float32)

    def call(n: int):
        def run():
            result = onnxviz.attack(wide_conv, photo, attack, batch_size=BATCH, progress=False, max_queries=queries,
                                    **dict.fromkeys(options, n))
            assert result.queries[0] > queries // 2, "the attack stopped early: the peak would prove nothing"
        return run

    call(count)()
    small, large = numpy_peak_mib(call(count)), numpy_peak_mib(call(10 * count))
    assert large < 1.2 * small, f"{attack}: {options} {count} -> {small:.1f} MiB, {10 * count} -> {large:.1f} MiB"


@pytest.mark.parametrize(("attack", "options", "count", "queries"), ATTACKS)
def test_attack_chunks_change_nothing(wide_conv, attack, options, count, queries):
    photo = np.random.default_rng(3).random((*SIZE, 3), dtype=np.float32)
    one, other = (onnxviz.attack(wide_conv, photo, attack, batch_size=b, progress=False, max_queries=queries,
                                 **dict.fromkeys(options, 3 * count)) for b in (4, 64))
    np.testing.assert_array_equal(one.queries, other.queries)
    np.testing.assert_allclose(one.adversarial, other.adversarial, atol=1e-6)


@pytest.mark.parametrize(("method", "options"), [("rise", {"n_masks": 90}), ("lime", {"n_samples": 50}),
                                                 ("smoothgrad", {"nt_samples": 9})])
def test_chunking_by_the_batch_changes_nothing(wide_conv, image, method, options):
    if method == "smoothgrad":
        pytest.importorskip("onnx2torch")
    one, other = (onnxviz.explain(wide_conv, image, method, batch_size=b, progress=False, **options).attributions
                  for b in (4, 64))
    np.testing.assert_allclose(one, other, rtol=1e-5, atol=1e-6 * np.abs(other).max())
