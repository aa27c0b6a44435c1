"""Feature visualization and synthesis: images made by optimizing through the torch backend."""

from .base import Request, Synthesis, Synthesized
from .objectives import Objective, channel, class_logit, neuron
from .result import SynthesisResult
from .run import synthesis_names, synthesize

__all__ = ["Objective", "Request", "Synthesis", "SynthesisResult", "Synthesized", "channel", "class_logit", "neuron",
           "synthesis_names", "synthesize"]
