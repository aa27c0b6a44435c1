"""Progress bars for long work: on stderr, shown only for work that lasts over a second (tqdm draws them; a widget in
notebooks, through tqdm.auto). Cancelling is not theirs: every forward pass goes through `run_batched`, whose chunks
are the checkpoints (`interrupts.check`)."""

from __future__ import annotations

import sys

from tqdm import tqdm as Bar  # the class every tqdm bar is (for type hints)
from tqdm.auto import tqdm


def bar(total: int, desc: str, unit: str = "input", enabled: bool = True) -> Bar:
    return tqdm(total=total, desc=desc, delay=1.0, leave=False, file=sys.stderr, disable=not enabled, unit=unit)
