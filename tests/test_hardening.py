"""Issue 9's checklist for models: hostile and broken files get one clear error, the process survives native
crashes, nothing outside the model's folder is read. (Images and outputs: test_hardening_io.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import hostile_models as hm
import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import onnxviz
from onnxviz import Limits, ModelError
from onnxviz.cli import cli
from onnxviz.demo import demo_model_path

X = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
EXPECTED = X.reshape(2, -1) @ hm.W.T


def one_line_error(args: list[str]) -> str:
    """Run the CLI; it must fail with exit 1, one line on stderr and no traceback. Returns that line."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def ort_file(tmp_path: Path) -> Path:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "model.ort")
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(demo_model_path()), options, providers=["CPUExecutionProvider"])
    return tmp_path / "model.ort"


# -- files that are not models -----------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: d / "missing.onnx", "model file not found"),
    (lambda d: d, "is a folder, not a model file"),
    (lambda d: save(onnx.ModelProto(), d / "empty.onnx"), "the file is empty (0 bytes)"),
    (lambda d: (d / "r.onnx", (d / "r.onnx").write_bytes(np.random.default_rng(1).bytes(3000)))[0],
     "is not a readable ONNX model"),
    (lambda d: (d / "p.onnx", (d / "p.onnx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100)))[0], "it is a PNG image"),
    (lambda d: (d / "t.onnx", (d / "t.onnx").write_bytes(demo_model_path().read_bytes()[:5000]))[0],
     "is not a readable ONNX model"),
    (lambda d: (d / "text.onnx", (d / "text.onnx").write_text(onnx.printer.to_text(hm.linear())))[0],
     "ONNX text format; convert it with onnx.save(onnx.parser.parse_model"),
    (ort_file, "an ONNX Runtime .ort file"),
    (lambda d: save(hm.newer(ir=True), d / "ir.onnx"), "newer than this onnx supports"),
    (lambda d: save(hm.newer(ir=False), d / "opset.onnx"), "upgrade: pip install -U onnx onnxruntime"),
])
def test_files_that_are_not_loadable_models_get_one_line_with_a_hint(make, expected, tmp_path):
    assert expected in one_line_error(["info", str(make(tmp_path)), "--no-torch"])


def test_an_unreadable_file_is_one_clear_error(tmp_path, monkeypatch):
    path = save(hm.linear(), tmp_path / "locked.onnx")

    real_open = os.open

    def denied(file, *args, **kwargs):
        if str(file).endswith("locked.onnx"):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)  # chmod 000 does not stop root, who runs CI
    with pytest.raises(ModelError, match=r"cannot read the model file .*locked\.onnx: Permission denied"):
        onnxviz.load(path, limits=Limits(isolate=False))


# -- external data -----------------------------------------------------------------------------------------
WHERE = ["initializer", "constant", "sparse", "subgraph", "function", "function default", "function subgraph",
         "training_info"]
# also walked, but the ONNX checker refuses the model once the data is read (no standard op has the attribute)
WALKED_ONLY = ["tensors attribute"]


@pytest.mark.parametrize("where", WHERE)
def test_external_data_inside_the_folder_is_inlined_and_runs(where, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "w.bin").write_bytes(b"pad!" + hm.W.tobytes())
    model = onnxviz.load(save(hm.external(where, "data/w.bin", offset=4, length=hm.W.nbytes), tmp_path / "m.onnx"),
                         normalize=False)
    np.testing.assert_allclose(model.run(X, ("y",))[0], EXPECTED, rtol=1e-6)
    assert not any(t.external_data for t in model.proto.graph.initializer)


@pytest.fixture
def outside(tmp_path) -> dict[str, Path]:
    """A model folder, and beside it a FIFO standing for a secret: opening it would block, so a test that
    gets the expected error (not a timeout) proves not one byte of it was read."""
    folder, secrets = tmp_path / "model", tmp_path / "secrets"
    folder.mkdir()
    secrets.mkdir()
    os.mkfifo(secrets / "fifo")
    (secrets / "plain.bin").write_bytes(hm.W.tobytes())
    return {"folder": folder, "secrets": secrets}


ESCAPES = {
    "dotdot": (lambda f, s: "../secrets/fifo", "leaves the model's folder"),
    "absolute": (lambda f, s: str(s / "fifo"), "leaves the model's folder"),
    "symlinked file": (lambda f, s: (f / "w.bin").symlink_to(s / "fifo") or "w.bin", "goes through a symbolic link"),
    "symlinked parent": (lambda f, s: (f / "d").symlink_to(s, target_is_directory=True) or "d/fifo",
                         "goes through a symbolic link"),
    "hard link": (lambda f, s: os.link(s / "plain.bin", f / "w.bin") or "w.bin", "hard links"),
    "missing": (lambda f, s: "nowhere.bin", "is missing from"),
    "bad offset": (lambda f, s: shutil.copy(s / "plain.bin", f / "w.bin") and "w.bin#9999", "lies outside"),
    "bad length": (lambda f, s: shutil.copy(s / "plain.bin", f / "w.bin") and "w.bin#0#10", "needs 192"),
}


@pytest.mark.parametrize("where", WHERE + WALKED_ONLY)
@pytest.mark.parametrize("escape", list(ESCAPES))
def test_external_data_that_escapes_or_lies_is_refused_before_reading(where, escape, outside):
    make, expected = ESCAPES[escape]
    location, *numbers = make(outside["folder"], outside["secrets"]).split("#")
    offset, length = ([int(n) for n in numbers] + [None, None])[:2]
    path = save(hm.external(where, location, offset, length), outside["folder"] / "m.onnx")
    with pytest.raises(ModelError, match=expected):
        onnxviz.load(path, limits=Limits(load_timeout=30))


@pytest.mark.parametrize("where", ["function default", "function subgraph"])
def test_onnxruntime_never_resolves_external_data_itself(where, tmp_path, monkeypatch):
    """The leak of issue 15: a tensor the validator missed was read by onnxruntime relative to the working folder,
    and its bytes came back in the logits. Now the model's folder is the only place looked at."""
    cwd, folder = tmp_path / "cwd", tmp_path / "model"
    cwd.mkdir()
    (cwd / "secret.bin").write_bytes((hm.W * 1000).tobytes())
    monkeypatch.chdir(cwd)
    path = save(hm.external(where, "secret.bin"), folder / "m.onnx")
    with pytest.raises(ModelError, match=r"external data file 'secret.bin' is missing from .*model"):
        onnxviz.load(path, normalize=False)
    (folder / "secret.bin").write_bytes(hm.W.tobytes())  # the model's own copy is read, and only it
    np.testing.assert_allclose(onnxviz.load(path, normalize=False).run(X, ("y",))[0], EXPECTED, rtol=1e-6)


def test_no_runtime_is_handed_a_model_that_names_an_external_file():
    from onnxviz.backends.ort import OrtBackend
    from onnxviz.guard.walk import external_tensors

    proto = hm.external("function default", "w.bin")
    assert external_tensors(proto) == ["function 'MakeW' > attribute default 'w'"]
    with pytest.raises(ModelError, match="still refers to external data after validation"):
        OrtBackend(proto, "x", np.dtype(np.float32))
    assert external_tensors(hm.linear()) == []


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_non_regular_model_and_data_files_are_refused_before_reading(kind, tmp_path):
    if kind == "fifo":
        os.mkfifo(tmp_path / "model.onnx")
        path, what = tmp_path / "model.onnx", "a named pipe"
    else:
        path, what = Path("/dev/zero"), "a character device"
    start = time.monotonic()
    with pytest.raises(ModelError, match=f"is not a regular file \\({what}\\)"):
        onnxviz.load(path, limits=Limits(load_timeout=30))
    assert time.monotonic() - start < 20  # refused at once, not read until a limit
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "w.bin")  # a FIFO as external data used to block in open() until the timeout
    model = save(hm.external("initializer", "w.bin"), tmp_path / "d" / "m.onnx")
    with pytest.raises(ModelError, match="is not a regular file"):
        onnxviz.load(model, limits=Limits(load_timeout=30))
    assert time.monotonic() - start < 40


def test_external_data_in_a_model_given_as_bytes_is_refused(tmp_path):
    with pytest.raises(ModelError, match="load it from its path"):
        onnxviz.load(hm.external("initializer", "w.bin").SerializeToString())


# -- budgets, structure, domains ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["ConstantOfShape", "Range", "Tile", "Expand"])
def test_tiny_files_asking_for_terabytes_exceed_the_budget(op, tmp_path):
    path = save(hm.bomb(op), tmp_path / f"{op}.onnx")
    assert path.stat().st_size < 1000
    line = one_line_error(["info", str(path), "--no-torch"])
    assert "exceeds the budget" in line and op in line and "--max-tensor-size" in line


def test_declared_tensor_sizes_and_file_sizes_have_budgets(tmp_path):
    with pytest.raises(ModelError, match=r"declares 1000000x1000000 = 3.6 TiB, which exceeds the budget of 4.0 GiB"):
        onnxviz.load(hm.huge_constant())
    with pytest.raises(ModelError, match="over the 100 B limit"):
        onnxviz.load(save(hm.linear(), tmp_path / "m.onnx"), limits=Limits(max_file_bytes=100))
    with pytest.raises(ModelError, match="exceeds the budget of 128 B"):
        onnxviz.load(hm.linear(), limits=Limits(max_tensor_bytes=128))


def test_subgraph_nesting_cycles_and_undefined_names_are_refused():
    assert onnxviz.load(hm.nested_if(3), normalize=False).run(X, ("y",))[0].shape == (2, 3)
    with pytest.raises(ModelError, match="nested more than 8 deep"):
        onnxviz.load(hm.nested_if(20))
    with pytest.raises(ModelError, match="nested more than 8 deep"):
        onnxviz.load(hm.nested_loop(20))
    with pytest.raises(ModelError, match=r"has a cycle through nodes .*'first'"):
        onnxviz.load(hm.cycle())
    with pytest.raises(ModelError, match="node 'reads_a_ghost' in the graph reads 'ghost', which no input"):
        onnxviz.load(hm.undefined_input())


def test_unknown_domains_are_listed_and_contrib_ops_need_a_flag(tmp_path):
    line = one_line_error(["info", str(save(hm.foreign_op("evil.ops", "Foo"), tmp_path / "e.onnx")), "--no-torch"])
    assert "outside the standard ONNX domains: evil.ops::Foo" in line and "--allow-domain evil.ops" in line
    contrib = save(hm.foreign_op("com.microsoft", "Gelu"), tmp_path / "gelu.onnx")
    assert "com.microsoft::Gelu" in one_line_error(["info", str(contrib), "--no-torch"])
    model = onnxviz.load(contrib, limits=Limits(allowed_domains={"com.microsoft"}))
    from scipy.special import erf

    gelu = X * 0.5 * (1 + erf(X / np.sqrt(2)))
    np.testing.assert_allclose(model.run(X, ("y",))[0], gelu.reshape(2, -1) @ hm.W.T, rtol=1e-5, atol=1e-6)
    result = CliRunner().invoke(cli, ["info", str(contrib), "--no-torch", "--allow-domain", "com.microsoft"])
    assert result.exit_code == 0, result.output


# -- isolation ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("crash", "expected"), [
    ("segfault", "crashed the loader process (killed by SIGSEGV)"),
    ("abort", "crashed the loader process (killed by SIGABRT)"),
    ("hang", "did not finish within 3 s"),
    ("hog", "needs more memory than the loader's limit"),
])
def test_a_native_crash_or_hang_while_loading_is_an_error_and_the_process_lives(crash, expected, monkeypatch):
    from onnxviz.guard.worker import WORKER

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # so the worker can import the crashers
    WORKER.stop()
    monkeypatch.setattr("onnxviz.guard.open.CHECK", f"crashers:{crash}")
    with pytest.raises(ModelError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        # only the hang waits for the timeout; the crashes must not race a short one on a loaded machine
        timeout = 3 if crash == "hang" else 120
        onnxviz.load(hm.linear(), limits=Limits(load_timeout=timeout, worker_memory_bytes=4 * 2**30))
    monkeypatch.undo()
    np.testing.assert_allclose(onnxviz.load(hm.linear()).run(X, ("y",))[0], EXPECTED, rtol=1e-6)


def test_the_cli_survives_a_crashing_loader(tmp_path):
    path = save(hm.linear(), tmp_path / "m.onnx")
    code = ("import onnxviz.guard.open as o, sys; o.CHECK = 'crashers:segfault'; from onnxviz.cli import main; "
            f"sys.argv = ['onnxviz', 'info', {str(path)!r}, '--no-torch']; main()")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert "crashed the loader process (killed by SIGSEGV)" in result.stderr and "Traceback" not in result.stderr


# -- inputs and outputs the methods cannot use --------------------------------------------------------------
def test_several_inputs_non_image_and_integer_inputs_are_explained_or_refused_with_the_reason():
    from onnx import TensorProto, helper

    two = hm._model(hm._head(), [onnx.numpy_helper.from_array(hm.W, "W")],
                    inputs=(hm.X, helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1])))
    with pytest.raises(ModelError, match=r"2 inputs \(x, mask\); onnxviz explains models with one image input"):
        onnxviz.load(two)
    weights = [onnx.numpy_helper.from_array(hm.W, "W")]
    vector = hm._model([helper.make_node("Gemm", ["v", "W"], ["y"], transB=1)], weights,
                       inputs=(helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 16]),))
    model = onnxviz.load(vector)
    v = X.reshape(2, 16)
    np.testing.assert_allclose(onnxviz.explain(model, v, "saliency", target=1, abs=False).attributions,
                               np.broadcast_to(hm.W[1], v.shape), rtol=1e-6)
    with pytest.raises(onnxviz.MethodError, match="occlusion explains images, but the model's input 'v' has shape"):
        onnxviz.explain(model, v, "occlusion")
    integer = hm._model([helper.make_node("Cast", ["x"], ["c"], to=TensorProto.FLOAT),
                         helper.make_node("Flatten", ["c"], ["f"]),
                         helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)], weights,
                        inputs=(helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 1, 4, 4]),))
    model = onnxviz.load(integer)
    xi = np.arange(32, dtype=np.int64).reshape(2, 1, 4, 4)
    # integer pixels the graph casts to floats (issue 21): the gradient wrt the pixel values is the Gemm's row
    np.testing.assert_allclose(onnxviz.explain(model, xi, "saliency", target=1, abs=False).attributions,
                               np.broadcast_to(hm.W[1].reshape(1, 4, 4), (2, 1, 4, 4)), rtol=1e-6)
    assert onnxviz.explain(model, xi, "occlusion", window=2, progress=False).attributions.shape == (2, 1, 4, 4)
    table = onnx.numpy_helper.from_array(np.random.default_rng(0).random((256, 1)).astype(np.float32), "table")
    ids = hm._model([helper.make_node("Gather", ["table", "x"], ["g"]),  # integers as indices: no pixels
                     helper.make_node("Flatten", ["g"], ["f"]),
                     helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)], [*weights, table],
                    inputs=(helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 1, 4, 4]),))
    with pytest.raises(onnxviz.MethodError, match=r"is not cast to a float first \(token ids, indices\): no "
                                                  "gradient flows through it"):
        onnxviz.explain(onnxviz.load(ids), xi, "saliency")


def test_a_negative_target_is_refused(tmp_path):
    from onnxviz.demo import demo_images

    line = one_line_error(["explain", str(demo_model_path()), str(demo_images()[0]), "--target", "-1",
                           "--out", str(tmp_path / "out")])
    assert "out of range" in line or "neither a class index" in line


# -- the file system ---------------------------------------------------------------------------------------
def test_a_read_only_model_folder_works_and_nothing_is_written_beside_the_model(tmp_path):
    folder = tmp_path / "ro"
    path = save(hm.linear(), folder / "m.onnx")
    folder.chmod(0o555)
    try:
        model = onnxviz.load(path)
        onnxviz.explain(model, X, "saliency", target=0)
        assert sorted(p.name for p in folder.iterdir()) == ["m.onnx"]
    finally:
        folder.chmod(0o755)


def test_unicode_and_spaces_in_paths_work(tmp_path):
    import cv2

    folder = tmp_path / "mödel dir ✓"
    path = save(onnx.load(str(demo_model_path())), folder / "my model.onnx")
    image = folder / "cät photo.png"
    cv2.imwrite(str(tmp_path / "ascii.png"), np.full((32, 32), 128, np.uint8))
    shutil.move(tmp_path / "ascii.png", image)
    out = tmp_path / "öut dir"
    result = CliRunner().invoke(cli, ["explain", str(path), str(image), "-m", "gradcam", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "cät_photo_gradcam.png").is_file()


def test_two_models_with_the_same_file_name_and_a_rewritten_file_are_never_confused(tmp_path):
    a = save(hm.linear(hm.W), tmp_path / "a" / "model.onnx")
    b = save(hm.linear(-hm.W), tmp_path / "b" / "model.onnx")
    ya, yb = (onnxviz.load(p).run(X, ("y",))[0] for p in (a, b))
    np.testing.assert_allclose(ya, EXPECTED, rtol=1e-6)
    np.testing.assert_allclose(yb, -EXPECTED, rtol=1e-6)
    save(hm.linear(2 * hm.W), a)
    np.testing.assert_allclose(onnxviz.load(a).run(X, ("y",))[0], 2 * EXPECTED, rtol=1e-6)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_thousand_load_unload_cycles_keep_memory_flat():
    data = hm.linear().SerializeToString()
    for _ in range(100):
        onnxviz.load(data, normalize=False).run(X, ("y",))
    warm = _rss_mib()
    for _ in range(1000):
        onnxviz.load(data, normalize=False).run(X, ("y",))
    assert _rss_mib() - warm < 40, f"{warm:.0f} MiB -> {_rss_mib():.0f} MiB"


def test_a_forked_child_gets_its_own_loader_and_the_parents_keeps_working():
    from onnxviz.guard import open_model

    onnxviz.load(hm.linear())
    pid = os.fork()
    if pid == 0:  # the child must not talk to the parent's worker over the inherited socket. It stays off
        try:  # onnxruntime itself, which is not fork-safe once the parent has used it
            proto, _ = open_model(hm.linear().SerializeToString())
            os._exit(0 if proto.graph.node[1].op_type == "Gemm" else 1)
        finally:
            os._exit(2)
    deadline = time.time() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.time() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0
    np.testing.assert_allclose(onnxviz.load(hm.linear()).run(X, ("y",))[0], EXPECTED, rtol=1e-6)


def test_a_forked_child_that_collects_its_parents_sessions_does_not_crash():
    """Sessions left in reference cycles are freed by whichever process collects first; in a forked child the
    destructor would join onnxruntime threads that did not survive the fork (exit -11 before the fix). The suite
    hit it once in the forked-loader test above, depending on what earlier tests had left for the collector."""
    import gc

    class Holder:
        pass

    gc.disable()
    try:
        for _ in range(3):
            holder = Holder()
            holder.model, holder.cycle = onnxviz.load(hm.linear(), normalize=False), holder
            holder.model.run(X, ("y",))
            del holder
        pid = os.fork()
        if pid == 0:
            try:
                gc.collect()
            finally:
                os._exit(0)
    finally:
        gc.enable()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_onnxruntimes_own_log_lines_never_reach_the_terminal(tmp_path):
    """A graph that fails inside onnxruntime at run time (a Reshape no batch fits): onnxruntime logs an error line
    of its own besides raising; the CLI shows our one line only."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    model = hm._model(nodes, [numpy_helper.from_array(np.array([-1, 7], np.int64), "shape"),
                              numpy_helper.from_array(np.ones((3, 7), np.float32), "W")])
    path = save(model, tmp_path / "reshape.onnx")
    done = subprocess.run([sys.executable, "-m", "onnxviz", "info", str(path), "--no-torch"], capture_output=True,
                          text=True, timeout=120)  # a real process: onnxruntime writes to fd 2 directly
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and "onnxruntime failed to run the model" in lines[0], done.stderr
