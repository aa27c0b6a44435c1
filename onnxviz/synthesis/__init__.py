"""Feature visualization and synthesis: images made by optimizing through the torch backend."""

from .base import Request, Synthesis, Synthesized
from .result import SynthesisResult
from .run import synthesis_names, synthesize

__all__ = ["Request", "Synthesis", "SynthesisResult", "Synthesized", "synthesis_names", "synthesize"]
