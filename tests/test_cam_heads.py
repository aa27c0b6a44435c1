"""Issue 15: `cam` reads any head that provably averages the whole map before its linear layer (open_nsfw's
AveragePool with a kernel the size of the map, tf2onnx's Transpose before the Flatten), and refuses pooling that
does not (a smaller kernel, padding)."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz
from tests.tiny_models import pooled_net

RNG = np.random.default_rng(3)
CONV = RNG.standard_normal((5, 2, 3, 3)).astype(np.float32)
FC = RNG.standard_normal((4, 5)).astype(np.float32)
X = RNG.standard_normal((3, 2, 6, 10)).astype(np.float32)


@pytest.mark.parametrize("transpose", [False, True], ids=["NCHW", "transposed to NHWC before the Flatten"])
def test_cam_on_an_average_pool_head_equals_the_weighted_channels(transpose):
    model = onnxviz.load(pooled_net(CONV, FC, transpose=transpose))
    ex = onnxviz.explain(model, X, "cam", target=[0, 2, 3], layer="act", progress=False)
    acts = model.run(X, ("act",))[0]
    expected = np.maximum(np.einsum("nc,nchw->nhw", FC[[0, 2, 3]], acts), 0)  # Zhou et al.: sum_c w_kc A_c
    np.testing.assert_allclose(ex.raw, expected, rtol=1e-5, atol=1e-5)
    assert ex.raw.shape == (3, 6, 10)


@pytest.mark.parametrize("pool", ["partial", "padded"])
def test_pooling_that_does_not_average_the_whole_map_is_refused(pool):
    model = onnxviz.load(pooled_net(CONV, FC, pool=pool) if pool == "padded" else _partial())
    with pytest.raises(onnxviz.MethodError, match="cam needs a global-average-pooling \\+ linear head"):
        onnxviz.explain(model, X, "cam", layer="act", progress=False)


def _partial():
    return pooled_net(CONV, np.repeat(FC, 4, axis=1), pool="partial")  # 2 x 2 pooled cells per channel
