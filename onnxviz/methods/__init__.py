"""Built-in explanation methods, one module each. Each is a plugin registered through the `onnxviz.methods` entry
points, like any other; `onnxviz.plugins()` lists what is registered."""
