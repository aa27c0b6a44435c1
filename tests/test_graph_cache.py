"""The graph cache: a second load of the same model takes the normalized graph from disk instead of onnxslim; a
changed model, another onnxslim version or input, a damaged or foreign file, or the cache turned off means a fresh
normalization. Loading never fails because of the cache."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

import onnxviz
from onnxviz import graph_cache
from onnxviz import model as model_module
from tests.tiny_models import linear

RNG = np.random.default_rng(0)
PROTO = linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3))


def _logits(x: np.ndarray) -> np.ndarray:
    return onnxviz.load(PROTO, normalize=False).ort.run(x, ("logits",))[0]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The cache on, in a folder of its own, and a count of onnxslim's runs."""
    where = tmp_path / "graphs"
    monkeypatch.setenv("ONNXVIZ_CACHE", "on")
    monkeypatch.setenv("ONNXVIZ_CACHE_DIR", str(where))
    runs = []
    slim = model_module._normalize

    def counted(proto):
        runs.append(1)
        return slim(proto)

    monkeypatch.setattr(model_module, "_normalize", counted)
    return where, runs


def test_a_second_load_of_the_same_model_skips_normalization_and_gives_the_same_graph(cache):
    where, runs = cache
    first = onnxviz.load(PROTO)
    second = onnxviz.load(PROTO)
    assert len(runs) == 1 and second.normalization == first.normalization == "onnxslim"
    assert second.proto.SerializeToString() == first.proto.SerializeToString()
    x = RNG.random((2, 1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(second.ort.run(x, ("logits",))[0], _logits(x))
    assert len(list(where.glob("*.onnx"))) == 1
    if os.name == "posix":
        assert where.stat().st_mode & 0o077 == 0  # only the user can read or write it


def test_another_model_input_or_onnxslim_version_is_a_miss(cache, monkeypatch):
    _where, runs = cache
    onnxviz.load(PROTO)
    onnxviz.load(linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3)))  # other weights
    assert len(runs) == 2
    real = graph_cache.metadata.version
    monkeypatch.setattr(graph_cache.metadata, "version", lambda name: "0.0.0" if name == "onnxslim" else real(name))
    onnxviz.load(PROTO)
    assert len(runs) == 3


def test_a_fallback_is_remembered_too(cache, monkeypatch):
    """A model onnxslim cannot slim keeps its original graph; the next load does not try again."""
    _where, runs = cache

    def failing(proto):
        runs.append(1)
        return proto, "kept the original graph (onnxslim failed: RuntimeError)"

    monkeypatch.setattr(model_module, "_normalize", failing)
    onnxviz.load(PROTO)
    again = onnxviz.load(PROTO)
    assert len(runs) == 1 and again.normalization == "kept the original graph (onnxslim failed: RuntimeError)"


@pytest.mark.parametrize("damage", ["bytes", "truncated", "index", "missing index"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(cache, damage):
    where, runs = cache
    onnxviz.load(PROTO)
    (graph,) = where.glob("*.onnx")
    index = graph.with_suffix(".json")
    if damage == "bytes":  # same length, a valid graph with another weight: only the hash can tell
        data = graph.read_bytes()
        weights = onnx.numpy_helper.to_array(next(i for i in PROTO.graph.initializer if i.name == "W")).tobytes()
        at = data.index(weights) + 5
        graph.write_bytes(data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:])
    elif damage == "truncated":
        graph.write_bytes(graph.read_bytes()[:30])
    elif damage == "index":
        index.write_text("{not json")
    else:
        index.unlink()
    model = onnxviz.load(PROTO)
    assert len(runs) == 2 and model.normalization == "onnxslim"
    x = RNG.random((1, 1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.ort.run(x, tuple(model.outputs))[0], _logits(x))
    onnxviz.load(PROTO)
    assert len(runs) == 2  # the entry was written again


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_files_others_can_write_are_never_read(cache):
    where, runs = cache
    onnxviz.load(PROTO)
    (graph,) = where.glob("*.onnx")
    graph.chmod(0o666)
    onnxviz.load(PROTO)
    assert len(runs) == 2
    where.chmod(0o777)
    onnxviz.load(PROTO)
    assert len(runs) == 3  # a shared folder is not used at all
    where.chmod(0o700)


def test_turned_off_or_unwritable_the_cache_costs_nothing_but_time(cache, monkeypatch, tmp_path):
    where, runs = cache
    monkeypatch.setenv("ONNXVIZ_CACHE", "off")
    onnxviz.load(PROTO)
    onnxviz.load(PROTO)
    assert len(runs) == 2 and not where.exists()
    monkeypatch.setenv("ONNXVIZ_CACHE", "on")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ONNXVIZ_CACHE_DIR", str(blocker / "graphs"))  # below a file: mkdir fails
    assert onnxviz.load(PROTO).normalization == "onnxslim"


def test_the_oldest_entries_go_when_the_cache_is_full(cache, monkeypatch):
    where, _runs = cache
    monkeypatch.setattr(graph_cache, "LIMIT_BYTES", 1)  # not even room for one
    onnxviz.load(PROTO)
    assert not list(where.glob("*.onnx")) and not list(where.glob("*.json"))
    monkeypatch.setattr(graph_cache, "LIMIT_BYTES", 1 << 30)
    for _ in range(3):
        onnxviz.load(linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3)))
    graphs = sorted(where.glob("*.onnx"))
    assert len(graphs) == 3
    monkeypatch.setattr(graph_cache, "LIMIT_BYTES", sum(g.stat().st_size for g in graphs))  # exactly these three
    oldest = graphs[1]
    os.utime(oldest, (0, 0))
    onnxviz.load(linear(RNG.standard_normal((3, 16)), RNG.standard_normal(3)))
    names = {p.name for p in where.glob("*.onnx")}
    assert len(names) == 3 and oldest.name not in names and not oldest.with_suffix(".json").exists()
