"""Built-in methods. Each is a plugin registered through the `onnxviz.methods` entry points, like any other."""
