"""The loader under a bounded fuzz run: mutations of a seeded corpus of valid tiny models (bit flips, inserted and
deleted bytes, truncation, splices) each give a Model or an OnnxvizError. ONNXVIZ_FUZZ_EXAMPLES runs longer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import hostile_models as hm
import numpy as np
import tiny_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
from loader import one_input

from onnxviz import OnnxvizError

RNG = np.random.default_rng(0)
CORPUS = [m.SerializeToString() for m in (
    hm.linear(), hm.nested_if(3), hm.bomb("Tile"), hm.foreign_op("com.microsoft", "Gelu"),
    tiny_models.gap_net(RNG.standard_normal((4, 1, 3, 3)).astype(np.float32),
                        RNG.standard_normal((3, 4)).astype(np.float32)),
    hm.external("function", "w.bin"),
    hm.external("function default", "w.bin"),  # issue 15: tensors in function attribute defaults
    hm.external("training_info", "w.bin"),
    hm.with_metadata(hm.linear(), "onnxviz.preprocessing", '{"preset": "caffe", "size": [8, 6]}'),
)]
EXAMPLES = int(os.environ.get("ONNXVIZ_FUZZ_EXAMPLES", "600"))

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 32)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("splice"), st.integers(0, 10**6), st.integers(0, len(CORPUS) - 1)),
)


def mutate(data: bytes, steps) -> bytes:
    out = bytearray(data)
    for kind, at, arg in steps:
        at = at % (len(out) + 1)
        if kind == "flip" and at < len(out):
            out[at] ^= 1 << arg
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at:at + arg]
        elif kind == "truncate":
            del out[at:]
        elif kind == "splice":
            other = CORPUS[arg]
            out = out[:at] + other[at % max(len(other), 1):]
    return bytes(out)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # each example loads a model in the worker
@given(seed=st.sampled_from(range(len(CORPUS))), steps=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_models_load_or_fail_cleanly(seed, steps):
    model = one_input(mutate(CORPUS[seed], steps))  # any exception other than OnnxvizError fails the test
    if model is not None:  # what loads is usable: its graph runs on a probe input or says why it cannot
        try:
            model.run(model.probe_input(1), tuple(model.outputs))
        except OnnxvizError:  # onnxruntime's own failures arrive as ModelError too
            pass


@settings(max_examples=max(EXAMPLES // 5, 10), derandomize=True, deadline=None, database=None)
@given(st.binary(max_size=2048))
def test_random_bytes_load_or_fail_cleanly(data):
    one_input(data)  # any exception other than OnnxvizError fails the test


def test_the_corpus_itself_loads():
    loaded = [one_input(data) is not None for data in CORPUS]
    # a bomb, a contrib op and external data (bytes have no folder to read it from) are refused
    assert loaded == [True, True, False, False, True, False, False, False, True]


@settings(max_examples=max(EXAMPLES // 3, 20), derandomize=True, deadline=None, database=None)
@given(st.one_of(st.text(max_size=300), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(
        st.sampled_from(["preset", "mean", "std", "scale", "channel_order", "size", "other"]), inner, max_size=4)),
    max_leaves=12).map(json.dumps)))
def test_any_preprocessing_metadata_gives_a_valid_preprocessing_or_says_why(text):
    import warnings

    from onnxviz import preprocess

    try:
        fields = preprocess.from_metadata({preprocess.METADATA_KEY: text})
    except preprocess.MetadataError:
        fields = None
    if fields is not None:
        preprocess.Preprocessing(**fields)  # what the schema accepts always builds
    model = MODEL_FOR_METADATA.get("m")
    if model is None:
        import onnxviz

        model = MODEL_FOR_METADATA.setdefault("m", onnxviz.load(hm.linear(), normalize=False))
    model.metadata = {preprocess.METADATA_KEY: text}
    model.__dict__.pop("_preprocessing", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert isinstance(model.preprocessing, preprocess.Preprocessing)


MODEL_FOR_METADATA: dict = {}
