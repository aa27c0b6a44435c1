"""Finding image files: one list of suffixes and one folder scanner for every command that takes folders."""

from __future__ import annotations

from pathlib import Path

from .errors import ImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def is_image_file(path: Path) -> bool:
    """A regular file (or a link to one) with an image suffix: a folder named `x.png` is not one."""
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def images_in(folder: Path) -> list[Path]:
    """The image files under `folder`, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if is_image_file(p))


def find_images(sources: list[str | Path]) -> list[Path]:
    """Files as given; folders searched recursively for image files (sorted)."""
    found = []
    for source in map(Path, sources):
        if source.is_dir():
            found += images_in(source)
        elif source.is_file():
            found.append(source)
        else:
            raise ImageError(f"image or folder not found: {source}")
    if not found:
        raise ImageError("no images found in " + ", ".join(map(str, sources)))
    return found
