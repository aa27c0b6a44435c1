"""Fuzz target for the model loader: any bytes must give a Model or an OnnxvizError, never another exception
and never a dead process. Runs under atheris when it is installed (`python fuzz/loader.py [corpus dir]`) and,
bounded, under hypothesis in the test suite (tests/test_fuzz.py)."""

from __future__ import annotations

import sys

import onnxviz
from onnxviz import Limits, OnnxvizError

LIMITS = Limits(load_timeout=60, max_tensor_bytes=2**28)


def one_input(data: bytes) -> onnxviz.Model | None:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # metadata ignored, NaN weights: said, not failures
            model = onnxviz.load(data, normalize=False, limits=LIMITS)
            model.preprocessing  # noqa: B018  (the metadata schema, on whatever the mutation left)
        return model
    except OnnxvizError:
        return None


def main() -> None:
    import atheris  # only for open-ended fuzzing; the suite uses hypothesis

    atheris.Setup(sys.argv, lambda data: one_input(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
