"""Helpers for the server's API tests: the token, calls that carry it, waiting for a job, a demo PNG."""

from __future__ import annotations

import base64
import time

import cv2
import numpy as np

from onnxviz.bundled import demo_images
from onnxviz.serve.security import HEADER

TOKEN = "test-token-123"


def get(client, path, **kw):
    return client.get(path, headers={HEADER: TOKEN}, **kw)


def post(client, path, **kw):
    return client.post(path, headers={HEADER: TOKEN}, **kw)


def png() -> bytes:
    return demo_images()[0].read_bytes()


def picture(text: str) -> np.ndarray:
    """A base64 PNG from the API as RGB uint8."""
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(text), np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "not a PNG"
    return bgr[..., ::-1]


def wait(client, job_id: str, timeout: float = 120.0) -> dict:
    end = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < end:
        state = get(client, f"/api/jobs/{job_id}").json()
        if state["status"] in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {state}")
