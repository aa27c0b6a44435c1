"""Say what a file is when it is not an ONNX protobuf: the error then names the fix."""

from __future__ import annotations

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"PK\x03\x04": "a zip archive (a Keras .keras file, a PyTorch .pt or a .npz?)",
    b"\x80\x02": "a Python pickle (a PyTorch checkpoint?)",
    b"\x89HDF": "an HDF5 file (a Keras .h5 model? export it with tf2onnx)",
    b"%PDF": "a PDF document",
}


def describe(data: bytes) -> str | None:
    """A hint for data that is not a binary ONNX model, or None when nothing is recognized."""
    if not data:
        return "the file is empty (0 bytes)"
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return f"it is {what}, not an ONNX model"
    if data[4:8] == b"ORTM":
        return ("it is an ONNX Runtime .ort file; onnxviz reads the .onnx it was converted from "
                "(ORT format keeps no graph that torch or shape inference can use)")
    head = data[:4096].lstrip()
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if (text.startswith("<") and "ir_version" in text) or ("=>" in text and "{" in text):
        return ("it is ONNX text format; convert it with onnx.save(onnx.parser.parse_model(text), 'model.onnx')")
    if text.startswith("{"):
        return "it is JSON text, not a binary ONNX model"
    if text.isprintable() or all(c.isprintable() or c.isspace() for c in text):
        return "it is a text file, not a binary ONNX model"
    return None
