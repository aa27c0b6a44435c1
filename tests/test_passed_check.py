"""A second open of the same model file skips the guard's check (its worker process, the ONNX checker, the
onnxruntime probe): the file's SHA-256 is marked as passed under the limits it was checked with. Other bytes,
stricter limits, other versions, a marker someone else could write, external data or the cache turned off mean a
fresh check; a file that failed is never marked."""

from __future__ import annotations

import os

import numpy as np
import pytest

import onnxviz
from onnxviz import graph_cache
from onnxviz.errors import ModelError
from onnxviz.guard import open as guard_open
from onnxviz.guard.limits import GiB, Limits
from tests import hostile_models as hm
from tests.tiny_models import linear

RNG = np.random.default_rng(3)


@pytest.fixture
def checks(tmp_path, monkeypatch):
    """The cache on in a folder of its own; a list that grows by one per check (in the worker or in process)."""
    monkeypatch.setenv("ONNXVIZ_CACHE", "on")
    monkeypatch.setenv("ONNXVIZ_CACHE_DIR", str(tmp_path / "cache"))
    seen: list[str] = []
    worker_call, in_process = guard_open.WORKER.call, guard_open.check_model

    def counted_call(target, args, **kwargs):
        seen.append("worker")
        return worker_call(target, args, **kwargs)

    def counted_check(*args):
        seen.append("in process")
        return in_process(*args)

    monkeypatch.setattr(guard_open.WORKER, "call", counted_call)
    monkeypatch.setattr(guard_open, "check_model", counted_check)
    return seen


def _file(tmp_path, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3)).SerializeToString())
    return path


def test_the_second_open_of_a_file_skips_the_check_and_reads_the_same_graph(checks, tmp_path):
    path = _file(tmp_path)
    first, _ = guard_open.open_model(path)
    second, name = guard_open.open_model(path)
    assert checks == ["worker"] and name == str(path)
    assert second.SerializeToString() == first.SerializeToString()
    x = RNG.random((2, 1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(onnxviz.load(path).ort.run(x, ("logits",))[0],
                                  onnxviz.load(first, normalize=False).ort.run(x, ("logits",))[0])
    assert checks == ["worker"]  # the ModelProto given to load serializes to the same bytes: marked too


def test_bytes_and_in_process_checks_are_remembered_too(checks, tmp_path):
    data = _file(tmp_path).read_bytes()
    guard_open.open_model(data, Limits(isolate=False))
    guard_open.open_model(data, Limits(isolate=False))
    guard_open.open_model(data)  # the same limits but the worker: the verdict stands
    assert checks == ["in process"]


def test_other_bytes_a_stricter_limit_or_another_version_check_again(checks, tmp_path, monkeypatch):
    path = _file(tmp_path)
    guard_open.open_model(path)
    guard_open.open_model(path, Limits(worker_memory_bytes=3 * GiB, load_timeout=60))  # not what the verdict says
    assert checks == ["worker"]
    guard_open.open_model(path, Limits(max_tensor_bytes=1 << 20))
    guard_open.open_model(path, Limits(allowed_domains={"com.microsoft"}))
    assert len(checks) == 3
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one bit of the last initializer's value
    path.write_bytes(bytes(data))
    guard_open.open_model(path)
    assert len(checks) == 4
    real = graph_cache.metadata.version
    monkeypatch.setattr(graph_cache.metadata, "version",
                        lambda name: "0.0.0" if name == "onnxruntime" else real(name))
    guard_open.open_model(path)
    assert len(checks) == 5


def test_a_file_that_fails_is_never_marked(checks, tmp_path):
    path = tmp_path / "big.onnx"
    path.write_bytes(_file(tmp_path).read_bytes())
    tight = Limits(max_file_bytes=100)
    for _ in range(2):
        with pytest.raises(ModelError, match="over"):
            guard_open.open_model(path, tight)
    assert not list((tmp_path / "cache").glob("*.passed"))


def test_external_data_is_checked_every_time(checks, tmp_path):
    (tmp_path / "w.bin").write_bytes(hm.W.tobytes())
    path = tmp_path / "ext.onnx"
    path.write_bytes(hm.external("initializer", "w.bin").SerializeToString())
    for _ in range(2):
        proto, _ = guard_open.open_model(path)
        assert not any(t.external_data for t in proto.graph.initializer)
    assert checks == ["worker", "worker"]  # the marker covers the .onnx's bytes, not the files beside it


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_marker_others_could_write_is_not_believed(checks, tmp_path):
    path = _file(tmp_path)
    guard_open.open_model(path)
    (marker,) = (tmp_path / "cache").glob("*.passed")
    marker.chmod(0o666)
    guard_open.open_model(path)
    assert len(checks) == 2


def test_turned_off_every_open_is_checked(checks, tmp_path, monkeypatch):
    monkeypatch.setenv("ONNXVIZ_CACHE", "off")
    path = _file(tmp_path)
    guard_open.open_model(path)
    guard_open.open_model(path)
    assert len(checks) == 2 and not (tmp_path / "cache").exists()


def test_only_the_newest_markers_are_kept(checks, tmp_path, monkeypatch):
    monkeypatch.setattr(graph_cache, "MARKERS", 2)
    paths = [_file(tmp_path, f"m{i}.onnx") for i in range(3)]
    for i, path in enumerate(paths):
        guard_open.open_model(path)
        newest = max((tmp_path / "cache").glob("*.passed"), key=lambda p: p.stat().st_mtime)
        os.utime(newest, (i, i))  # the order they were written in, whatever the clock's resolution
    assert len(list((tmp_path / "cache").glob("*.passed"))) == 2
    guard_open.open_model(paths[0])  # the oldest went: checked again
    guard_open.open_model(paths[2])
    assert len(checks) == 4


def test_a_file_swapped_between_our_read_and_the_check_is_refused(tmp_path, monkeypatch):
    """The parent parses the bytes it read; the worker checks the bytes it reads. A file replaced in between would
    have its unchecked first version parsed: the two digests must agree."""
    monkeypatch.setenv("ONNXVIZ_CACHE", "on")
    monkeypatch.setenv("ONNXVIZ_CACHE_DIR", str(tmp_path / "cache"))
    path, other = _file(tmp_path), _file(tmp_path, "other.onnx").read_bytes()
    call = guard_open.WORKER.call

    def swapping(target, args, **kwargs):
        path.write_bytes(other)
        return call(target, args, **kwargs)

    monkeypatch.setattr(guard_open.WORKER, "call", swapping)
    with pytest.raises(ModelError, match="changed while it was being loaded"):
        guard_open.open_model(path)
    assert not list((tmp_path / "cache").glob("*.passed"))
