"""What the page receives for a result: pictures as base64 PNGs, and an explanation's map as raw float32 values so the
page can blend it at any opacity and read the value under the cursor."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..explanation import Explanation
from ..io import encode_png
from ..viz.overlay import colorize


def png64(picture: np.ndarray) -> str:
    return base64.b64encode(encode_png(picture)).decode("ascii")


def explanation_payload(ex: Explanation) -> dict[str, Any]:
    """The first sample: its image, the coloured map on its own, the map's values (row-major float32, little-endian),
    the figure with its colour bar, and what was explained."""
    images, norm, diverging = ex.drawn()
    values = np.ascontiguousarray(ex.maps()[0], dtype="<f4")
    low, high = (float(v) for v in ex.scales()[0])
    return {"image": png64(images[0]), "heat": png64(colorize(norm[0], diverging)),
            "values": base64.b64encode(values.tobytes()).decode("ascii"), "height": int(values.shape[0]),
            "width": int(values.shape[1]), "signed": bool(diverging), "scale": [low, high],
            "overlay": png64(ex.figure(0)), "label": ex.label(0), "method": ex.method, "layer": ex.layer,
            "backend": ex.backend, "seconds": ex.timings.get("explain_s")}
