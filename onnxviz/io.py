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

from . import imageheader, staging
from .errors import ImageError, OutputError, first_line

MAX_PIXELS = imageheader.MAX_PIXELS
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))  # also set by onnxviz/__init__, first
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # its warnings would break the one-line error rule
import cv2  # noqa: E402  (the limit above must be set before OpenCV loads)

image_format = imageheader.image_format
declared_size = imageheader.declared_size


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
    header = imageheader.read_header(data, name, MAX_PIXELS)
    # OpenCV reads OS/2 bitmaps as one grey channel unless colour is asked for (they have no alpha)
    flags = cv2.IMREAD_COLOR if header.os2_bmp else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:  # its assertions on odd headers, and its own pixel cap
        if "MAX_IMAGE_PIXELS" in str(exc):
            raise ImageError(f"{name} has more pixels than the limit of {MAX_PIXELS:,} (seen while decoding)") from None
        raise ImageError(f"{name} is damaged or not supported: OpenCV refuses it ({first_line(exc)[:200]})") from None
    if img is None:
        raise ImageError(f"{name} is damaged or truncated: OpenCV cannot decode it (PNG, JPEG, BMP, WebP and TIFF "
                         "are supported)")
    if img.size == 0:
        raise ImageError(f"{name} has no pixels")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(img.dtype, 1.0)
    img = img.astype(np.float32) / scale
    if not np.isfinite(img).all():
        bad = int((~np.isfinite(img)).sum())
        raise ImageError(f"{name} holds {bad} NaN or infinite pixel values (a float TIFF?); onnxviz reads finite "
                         "pixels only")
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 4:  # BGRA: composite on white
        alpha = img[..., 3:4]
        img = img[..., :3] * alpha + (1.0 - alpha)
    img = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3][..., ::-1]
    img = _orient(np.ascontiguousarray(img), jpeg_orientation(data))
    return np.clip(img, 0.0, 1.0)


def image_array(value, name: str = "image array") -> np.ndarray:
    """An image given as an array -> RGB or grey float32 HWC in [0, 1]: 8- and 16-bit integers are scaled as
    files are; floats must already lie in [0, 1] and be finite."""
    try:
        img = np.asarray(value)
    except (TypeError, ValueError):
        raise ImageError(f"{name} is not an array of numbers") from None
    if img.ndim != 3 or img.shape[-1] not in (1, 3) or 0 in img.shape:
        raise ImageError(f"{name} must be HWC with 1 or 3 channels (RGB or grey), got shape {img.shape}")
    if img.dtype in (np.uint8, np.uint16):
        return img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 65535.0)
    if not (np.issubdtype(img.dtype, np.floating) or np.issubdtype(img.dtype, np.integer) or img.dtype == bool):
        raise ImageError(f"{name} holds {img.dtype} values, not numbers")
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise ImageError(f"{name} holds NaN or infinite values")
    if img.min() < 0 or img.max() > 1:
        raise ImageError(f"{name} ranges {img.min():g}..{img.max():g}; image arrays are RGB in [0, 1] (divide 8-bit "
                         "values by 255, or pass a uint8 array)")
    return img


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
    """Write to a temporary file beside `path`, then rename: readers never see half a file. Inside a
    staging.staged(out) block, files meant for `out` go to its stage (the run's files appear together). Files
    get the usual permissions (0666 less the umask). Returns `path`."""
    path = Path(path)
    real = staging.redirect(path)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~staging.umask())  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, real)
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
