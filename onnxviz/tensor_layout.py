"""Reading an intermediate tensor's layout from its shape and the input image's size: a feature map (NCHW or NHWC)
is a plausible downsampling of the image, transformer tokens (N, T, C) are a few prefix tokens plus a patch grid,
and an attention matrix (T x T) is neither."""

from __future__ import annotations

from .errors import LayerError
from .layout import CHOICES, NCHW, NHWC, Layout, parse_tokens, tokens
from .layout import layout as layout_of

MAX_PREFIX = 16  # class + distillation + register tokens
SHRINK = 0.1  # unpadded convolutions may leave a map this much of the image smaller than size / stride


def _strides(limit: int) -> list[int]:
    """The strides networks downsample by: products of stride-2 stages, times 1, 3 (stems of 3) or 7 (patch 14)."""
    found: set[int] = set()
    power = 1
    while power <= limit:
        found.update(f * power for f in (1, 3, 7) if f * power <= limit)
        power *= 2
    return sorted(found)


def plausible_map(hw: tuple, image: tuple[int, int]) -> bool:
    """Whether (h, w) is the image downsampled by one usual stride s (see _strides): h * s within [H - 10% - s, H + s]
    (unpadded convolutions shrink it, padding rounds it up), the same s for both axes. A stride of 21 is not
    usual: (6, 8) is no feature map of a 128 x 160 image, but some head's (N, 6, 8, 32) slice of it."""
    h, w = hw
    if not all(isinstance(d, int) and d > 0 for d in (h, w)):
        return False
    height, width = image
    for s in _strides(max(image)):
        if all(size - SHRINK * size - s <= d * s <= size + s for d, size in ((h, height), (w, width))):
            return True
    return False


PATCHES = (4, 8, 14, 16, 32, 64)  # patch sizes (or stage strides: LeViT 64) of models that pad the image up


def patch_grid(count: int, image: tuple[int, int]) -> tuple[int, int] | None:
    """The (h, w) grid of `count` patch tokens over the image: h * w = count with one integer patch size s that
    divides both sides (H = h * s, W = w * s), or a usual patch size with the image padded up to it; at least
    2 x 2."""
    height, width = image
    for h in range(2, count // 2 + 1):
        w = count // h
        if count % h or w < 2:
            continue
        if height % h == 0 and width % w == 0 and height // h == width // w:
            return h, w
        if any(h == -(-height // s) and w == -(-width // s) for s in PATCHES):
            return h, w
    return None


def token_split(count, image: tuple[int, int]) -> tuple[int, tuple[int, int]] | None:
    """(prefix, grid) for T tokens: the fewest prefix tokens (0..16) that leave a patch grid."""
    if not isinstance(count, int):
        return None
    for prefix in range(min(MAX_PREFIX, count - 4) + 1):
        grid = patch_grid(count - prefix, image)
        if grid is not None:
            return prefix, grid
    return None


def detector_count(count, image: tuple[int, int]) -> bool:
    """Whether `count` is the number of candidate boxes of a multi-scale detector head over the image: the cells of
    the stride 8, 16, 32 (and 64) grids, once (anchor-free YOLO) or three times (YOLOv5 / v7 anchors)."""
    if not isinstance(count, int):
        return False
    for strides in ((8, 16, 32), (8, 16, 32, 64)):
        cells = sum(-(-image[0] // s) * -(-image[1] // s) for s in strides)
        floors = sum((image[0] // s) * (image[1] // s) for s in strides)
        if count in (cells, 3 * cells, floors, 3 * floors):
            return True
    return False


def per_image(shape: tuple, batch) -> bool:
    """Whether the first axis is the input's batch (a window-partitioned or head-merged tensor is not)."""
    first = shape[0]
    if not isinstance(first, int):
        return True
    return first == batch if isinstance(batch, int) else first == 1


def infer(shape: tuple, image: tuple | None, batch, hint: str) -> str:
    """The layout name of a tensor of `shape`: NCHW / NHWC (`hint` says which when both fit), a token layout, or
    "" (not an image-like tensor: vectors, attention matrices, window partitions). Without a known image size
    only the hint is left, for 4-D tensors."""
    if image is None or not all(isinstance(d, int) for d in image):
        return hint if len(shape) == 4 else ""
    if len(shape) not in (3, 4) or not per_image(shape, batch):
        return ""
    if len(shape) == 3:
        _, a, b = shape
        if a == b or detector_count(a, image) or detector_count(b, image):  # attention, or a detector's boxes
            return ""
        for count, width, channels_last in ((a, b, True), (b, a, False)):
            split = token_split(count, image)
            if split is not None and width != 1:  # (N, 1, T): one token (a class token being expanded)
                return tokens(*split, channels_last).name
        return ""
    _, a, b, c = shape
    first, last = plausible_map((b, c), image), plausible_map((a, b), image)
    if first and last:
        return hint
    if first or last:
        return "NCHW" if first else "NHWC"
    return ""


def override(spec: str, shape: tuple, image: tuple | None) -> Layout:
    """The layout a user names for a layer (`nchw`, `nhwc`, `tokens:1`, `ctokens:0:7x7`), completed from the shape
    and the input size; an impossible one is an error naming the shape."""
    parsed = parse_tokens(spec)
    if parsed is None:
        try:
            chosen = layout_of(spec.upper())
        except Exception:
            raise LayerError(f"unknown layer layout {spec!r}; choose {CHOICES}") from None
        if len(shape) != 4 or chosen not in (NCHW, NHWC):
            raise LayerError(f"layout {spec} needs a 4-D tensor; this layer has shape {list(shape)}")
        return chosen
    channels_last, prefix, grid = parsed
    if len(shape) != 3:
        raise LayerError(f"a token layout needs a 3-D tensor (N, T, C) or (N, C, T); this layer has shape "
                         f"{list(shape)}")
    count = shape[1] if channels_last else shape[2]
    if not isinstance(count, int):
        raise LayerError(f"the token count of shape {list(shape)} is symbolic: give the grid, e.g. tokens:1:14x14")
    if grid is None:
        if image is None or not all(isinstance(d, int) for d in image):
            raise LayerError("the input size is unknown: give the token grid, e.g. tokens:1:14x14")
        if prefix is None:
            split = token_split(count, image)
            if split is None:
                raise LayerError(f"{count} tokens are no prefix plus a patch grid of a {image[0]}x{image[1]} "
                                 f"image (shape {list(shape)}); give it, e.g. tokens:1:14x14")
            prefix, grid = split
        else:
            found = patch_grid(count - prefix, image) if count - prefix >= 4 else None
            if found is None:
                raise LayerError(f"{count} - {prefix} prefix tokens make no patch grid of a {image[0]}x{image[1]} "
                                 f"image (shape {list(shape)}); give the grid, e.g. tokens:{prefix}:14x14")
            grid = found
    prefix = 0 if prefix is None else prefix
    if prefix + grid[0] * grid[1] != count:
        raise LayerError(f"{prefix} + {grid[0]}x{grid[1]} tokens do not match the {count} of shape {list(shape)}")
    return tokens(prefix, grid, channels_last)
