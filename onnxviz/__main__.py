"""`python -m onnxviz` and the `onnxviz` command: signals are taken over before anything heavy is imported, so a
Ctrl-C in the first second is an exit status of 1 with one line, not a traceback from inside an import."""

from __future__ import annotations

import importlib
import sys

from . import interrupts


def main() -> None:
    interrupts.install()
    code = 1
    try:
        code = importlib.import_module("onnxviz.cli").run()  # deferred: the handlers above are in place first
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")
    except ImportError:
        if not interrupts.interrupted():
            raise
        sys.stderr.write("\nAborted!\n")  # a signal inside onnxruntime's import comes out as "initialization failed"
    finally:
        interrupts.finished()
    if interrupts.interrupted():  # a swallowed KeyboardInterrupt still fails the run
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
