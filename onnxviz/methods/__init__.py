"""Built-in methods. Each is a plugin registered through the `onnxviz.methods` entry points, like any other.

Importing a submodule makes Python set `onnxviz.methods` to this package, which would hide the public
function `onnxviz.methods()`; the package is therefore callable and answers like that function.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, name: str | None = None):
        from ..api import methods

        return methods(name)


sys.modules[__name__].__class__ = _CallablePackage
