"""Feature visualization and synthesis: images made by optimizing through the torch backend. Names load on first
use (lazy.exports), so a synthesis plugin can be listed without loading a model's code."""

from typing import TYPE_CHECKING

from ..lazy import exports

__all__ = ["Objective", "Request", "Synthesis", "SynthesisResult", "Synthesized", "channel", "class_logit", "neuron",
           "synthesis_names", "synthesize"]

__getattr__, __dir__ = exports(__name__, {
    ".base": ("Request", "Synthesis", "Synthesized"),
    ".objectives": ("Objective", "channel", "class_logit", "neuron"),
    ".result": ("SynthesisResult",),
    ".run": ("synthesis_names", "synthesize"),
})

if TYPE_CHECKING:  # what type checkers and IDEs see
    from .base import Request, Synthesis, Synthesized
    from .objectives import Objective, channel, class_logit, neuron
    from .result import SynthesisResult
    from .run import synthesis_names, synthesize
