"""Progress bars for long work: on stderr, shown only for work that lasts over a second, and every step a
checkpoint (`interrupts.check`) where a Ctrl-C or a server job's Cancel stops the run and a job counts its progress.
tqdm draws them (a widget in notebooks, through tqdm.auto)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from . import interrupts


class Bar(tqdm):
    """A tqdm bar whose every update is a checkpoint, drawn or not."""

    def update(self, n: float | None = 1) -> bool | None:
        interrupts.check()
        return super().update(n)


def bar(total: int, desc: str, unit: str = "input", enabled: bool = True) -> Bar:
    return Bar(total=total, desc=desc, delay=1.0, leave=False, file=sys.stderr, disable=not enabled, unit=unit)
