"""`python -m onnxviz.cli`, the same as `python -m onnxviz`."""

from ..__main__ import main

main()
