"""The only place that reads and writes image files and knows OpenCV is BGR.

Policy for what an image file holds: grey is repeated to RGB; palette images are expanded; an alpha channel
is composited on white; 16-bit images are scaled by 65535; JPEG EXIF orientation is applied (as phones and
browsers show the photo). The pixel count is read from the header and checked before decoding.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np

from .errors import ImageError, OutputError

MAX_PIXELS = 64_000_000
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
import cv2  # noqa: E402  (the limit above must be set before OpenCV loads)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """Width and height tags of the first image directory."""
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    e = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(e + "I", data[4:8])
        (count,) = struct.unpack(e + "H", data[offset : offset + 2])
        found = {}
        for k in range(count):
            tag, kind = struct.unpack(e + "HH", data[offset + 2 + 12 * k : offset + 6 + 12 * k])
            raw = data[offset + 10 + 12 * k : offset + 14 + 12 * k]
            if tag in (256, 257):
                found[tag] = struct.unpack(e + ("H" if kind == 3 else "I"), raw[: 2 if kind == 3 else 4])[0]
        return (found[256], found[257]) if len(found) == 2 else None
    except struct.error:
        return None


# the formats onnxviz reads, by their first bytes (OpenCV would also read PPM, PFM, EXR, HDR, JPEG 2000, ...)
FORMATS = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "BMP": (b"BM",),
           "WebP": (b"RIFF",), "TIFF": (b"II*\x00", b"MM\x00*")}


def image_format(data: bytes) -> str | None:
    """PNG, JPEG, BMP, WebP or TIFF from the magic bytes; None for anything else."""
    for name, magics in FORMATS.items():
        if any(data.startswith(m) for m in magics) and (name != "WebP" or data[8:12] == b"WEBP"):
            return name
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP, WebP or TIFF header; None when it cannot be read."""
    for reader in (_png_size, _jpeg_size, _bmp_size, _webp_size, _tiff_size):
        size = reader(data)
        if size:
            return size
    return None


def jpeg_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1..8) of a JPEG, 1 when absent."""
    start = data.find(b"Exif\x00\x00")
    if data[:2] != b"\xff\xd8" or start < 0:
        return 1
    tiff = data[start + 6 :]
    endian = "<" if tiff[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(endian + "I", tiff[4:8])
        (count,) = struct.unpack(endian + "H", tiff[offset : offset + 2])
        for k in range(count):
            entry = tiff[offset + 2 + 12 * k : offset + 14 + 12 * k]
            tag, _, _ = struct.unpack(endian + "HHI", entry[:8])
            if tag == 0x0112:
                value = struct.unpack(endian + "H", entry[8:10])[0]
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _orient(img: np.ndarray, orientation: int) -> np.ndarray:
    if orientation in (2, 4, 5, 7):
        img = cv2.flip(img, 1)
    rotate = {3: cv2.ROTATE_180, 4: cv2.ROTATE_180, 5: cv2.ROTATE_90_CLOCKWISE, 6: cv2.ROTATE_90_CLOCKWISE,
              7: cv2.ROTATE_90_COUNTERCLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if orientation in (5, 7):  # transpose / transverse = flip then rotate the other way
        return cv2.rotate(img, rotate[12 - orientation])
    return cv2.rotate(img, rotate[orientation]) if orientation in rotate else img


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Encoded bytes -> RGB float32 HWC in [0, 1], following the module's policy."""
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    if image_format(data) is None:
        raise ImageError(f"{name} is not a PNG, JPEG, BMP, WebP or TIFF image (its first bytes say otherwise); "
                         "convert it to one of those")
    size = declared_size(data)
    if size is not None and 0 in size:
        raise ImageError(f"{name} has no pixels: its header says {size[0]}x{size[1]}")
    if size and size[0] * size[1] > MAX_PIXELS:
        raise ImageError(f"{name}: {size[0]}x{size[1]} pixels is more than the limit of {MAX_PIXELS:,}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if img is None:
        raise ImageError(f"{name} is damaged or truncated: OpenCV cannot decode it (PNG, JPEG, BMP, WebP and TIFF "
                         "are supported)")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(img.dtype, 1.0)
    img = img.astype(np.float32) / scale
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 4:  # BGRA: composite on white
        alpha = img[..., 3:4]
        img = img[..., :3] * alpha + (1.0 - alpha)
    img = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3][..., ::-1]
    img = _orient(np.ascontiguousarray(img), jpeg_orientation(data))
    return np.clip(img, 0.0, 1.0)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file -> RGB float32 HWC in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    return decode_image(path.read_bytes(), str(path))


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an HW or HWC float image or map (area when shrinking, bilinear when growing); keeps the rank."""
    if image.shape[:2] == (height, width):
        return image
    shrink = height * width < image.shape[0] * image.shape[1]
    out = cv2.resize(image.astype(np.float32), (width, height),
                     interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape(height, width, -1) if image.ndim == 3 else out


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """RGB float [0, 1] or uint8 HWC -> PNG bytes."""
    rgb = image if image.dtype == np.uint8 else to_uint8(image)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ImageError("OpenCV could not encode the PNG")
    return buf.tobytes()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; nothing half-written was left") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def safe_filename(text: str, fallback: str = "item") -> str:
    """A file name from untrusted text (image names, node names, metadata, plugin names): letters, digits, _ . -
    only, no separators or leading dot, at most 100 characters."""
    return re.sub(r"[^\w.-]+", "_", text).strip("._-")[:100] or fallback


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    return write_bytes_atomic(path, encode_png(image))


def ensure_writable(folder: str | os.PathLike) -> Path:
    """Prove, before any long computation, that files can be written into `folder`: in it when it exists, else
    in its nearest existing parent (nothing is created, so a run that fails later leaves no empty folder)."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    try:
        if not probe_in.is_dir():
            raise NotADirectoryError(f"{probe_in} is a file, not a folder")
        fd, probe = tempfile.mkstemp(prefix=".onnxviz-write-check.", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write to the output folder {folder}: {exc.strerror or exc}; "
                          "choose another --out") from None
    return folder
