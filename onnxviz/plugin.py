"""What every plugin kind shares: a name, a paper, typed options and declared capabilities. The kinds are
`onnxviz.Method` (explanations), `onnxviz.Attack` and `onnxviz.Synthesis`, each with its own base class, its
runner and its contract check; a class's kind is its base class, never its name."""

from __future__ import annotations

from typing import ClassVar

from .options import NoOptions

KINDS = {"method": "an explanation method", "attack": "an attack", "synthesis": "a synthesis method"}
PLURAL = {"method": "explanation methods", "attack": "attacks", "synthesis": "synthesis methods"}
GROUPS = {"method": "onnxviz.methods", "attack": "onnxviz.attacks", "synthesis": "onnxviz.synthesis"}


class Plugin:
    """Class attributes a plugin declares; the engine reads them, so runners never test plugin names."""

    kind: ClassVar[str] = ""  # set by each base class: "method", "attack" or "synthesis"
    families: ClassVar[tuple[str, ...]] = ()  # the families a kind allows
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    requires: ClassVar[str] = "forward"  # "forward" (onnxruntime) or "gradients" (torch backend)
    needs_layer: ClassVar[bool] = False  # takes --layer (resolved once, before any work)
    estimable: ClassVar[bool] = False  # input gradients only: black-box estimates can stand in for torch
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    @classmethod
    def problems(cls) -> list[str]:
        """What is wrong with the class's declaration (empty when it is fine); kinds add their own checks."""
        found = []
        if cls.family not in cls.families:
            found.append(f"family {cls.family!r} is not one of {', '.join(cls.families)} for {KINDS[cls.kind]}")
        if cls.requires not in ("forward", "gradients"):
            found.append(f"requires must be forward or gradients, not {cls.requires!r}")
        return found

    @classmethod
    def describe(cls) -> str:
        """The first line of the summary, or of the docstring."""
        return cls.summary or (cls.__doc__ or "").strip().split("\n")[0]
