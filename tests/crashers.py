"""Stand-ins for native failures inside the loader worker (they run there, never in the test process)."""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np


def segfault(*args):
    ctypes.string_at(0)


def abort(*args):
    os.abort()


def hang(*args):
    time.sleep(3600)


def hog(*args):
    return np.ones(2**40, np.uint8)  # 1 TiB: past any RLIMIT_AS the worker has


def spin(*args):
    marker = os.environ.get("ONNXVIZ_TEST_SPINNING")
    if marker:
        open(marker, "w").close()  # tells the test that the worker is busy now
    while True:  # busy at 100% CPU, as a loader stuck in native code would be
        pass
