"""Reading still images of any common kind into 8-bit RGB.

Handles JPEG, PNG, BMP, WebP and TIFF, grayscale (with or without alpha),
RGB(A), 8/16-bit and floating-point pixels, and EXIF orientation. Decoding is
OpenCV's (fast, keeps bit depth); Pillow reads only the header (size and
orientation) before any pixel is decoded, so oversized files are refused
cheaply. Every failure is a :class:`~augane.io.source_errors.SourceReadError`
whose ``kind`` the preprocessing stage records as the sample's status.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from augane.io.atomic import atomic_path
from augane.io.listing import list_files
from augane.io.source_errors import (
    SourceCorruptError,
    SourceMissingError,
    SourceTooLargeError,
    SourceUnreadableError,
)

#: File name endings (lower case) taken as images when a folder is scanned.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

#: Default refusal limit, in pixels (100 megapixels = 300 MB as RGB).
DEFAULT_MAX_PIXELS = 100_000_000

_EXIF_ORIENTATION = 0x0112

#: Float images whose maximum is at most this are taken as [0, 1] (small overshoots clipped).
_FLOAT_UNIT_RANGE = 1.5


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, extension matched case-insensitively, hidden entries skipped),
    sorted."""
    return list_files(folder, IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class _Header:
    """What Pillow learns from the header alone: (width, height) and EXIF orientation (1 = upright)."""

    size: tuple[int, int]
    orientation: int


def _read_header(data: bytes) -> _Header | None:
    """Parse the header with Pillow; None when Pillow does not recognise the file (OpenCV may still)."""
    max_pixels = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # the size limit is ours (max_pixels), checked by the caller
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                try:
                    orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
                except Exception:  # damaged EXIF block: treat as upright, the pixels may still decode
                    orientation = 1
                return _Header(size=image.size, orientation=orientation)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _jpeg_is_complete(data: bytes) -> bool:
    """A JPEG's last scan (SOS marker 0xFFDA) must be followed by an end-of-image marker (0xFFD9).

    Inside entropy-coded data 0xFF is always stuffed (0xFF00) or a restart
    marker, so 0xFFD9 after the last SOS only appears as the real end marker;
    embedded thumbnails end before the main image's scans.
    """
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.find(b"\xff\xd9", last_scan) >= 0


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Convert OpenCV-decoded pixels to (H, W, 3) uint8 RGB.

    Args:
        pixels: (H, W), (H, W, 1|2|3|4) in OpenCV channel order (gray, gray+alpha,
            BGR, BGRA); uint8, uint16 (scaled by 255/65535) or float (taken as
            [0, 1] when no value exceeds 1.5, as [0, 255] otherwise; clipped).
    Returns:
        (H, W, 3) uint8 RGB; alpha is composited over black.
    Raises:
        SourceUnreadableError: other pixel types or channel counts.
    """
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise SourceUnreadableError(f"unsupported image layout {pixels.shape} (expected gray, gray+alpha, RGB or RGBA)")
    if pixels.dtype == np.uint8:
        values = pixels.astype(np.float32) if pixels.shape[2] in (2, 4) else pixels
        scale = 1.0
    elif pixels.dtype == np.uint16:
        values, scale = pixels.astype(np.float32), 255.0 / 65535.0
    elif np.issubdtype(pixels.dtype, np.floating):
        values = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        scale = 255.0 if float(values.max(initial=0.0)) <= _FLOAT_UNIT_RANGE else 1.0
    else:
        raise SourceUnreadableError(f"unsupported pixel type {pixels.dtype} (expected 8/16-bit or float)")
    channels = pixels.shape[2]
    if channels in (2, 4):
        alpha = values[..., -1:] * (1.0 / 255.0 if pixels.dtype == np.uint8 else scale / 255.0)
        values = values[..., :-1] * np.clip(alpha, 0.0, 1.0)
    if values.dtype != np.uint8:
        values = np.clip(values * scale + 0.5, 0, 255).astype(np.uint8)
    if values.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(values, 3, axis=2))
    return np.ascontiguousarray(values[..., ::-1])


def apply_exif_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn (H, W, C) pixels stored with EXIF ``orientation`` (1-8) upright."""
    if orientation == 2:
        image = image[:, ::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation == 4:
        image = image[::-1]
    elif orientation == 5:
        image = image.transpose(1, 0, 2)
    elif orientation == 6:
        image = np.rot90(image, k=-1)
    elif orientation == 7:
        image = image.transpose(1, 0, 2)[::-1, ::-1]
    elif orientation == 8:
        image = np.rot90(image, k=1)
    return np.ascontiguousarray(image)


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an encoded image into upright (H, W, 3) uint8 RGB.

    Args:
        data: the file's bytes.
        name: shown in error messages.
        max_pixels: refuse images with more pixels than this.
    Raises:
        SourceUnreadableError: empty, not an image, or an unsupported pixel type.
        SourceCorruptError: an image whose pixel data is damaged or truncated.
        SourceTooLargeError: more than ``max_pixels`` pixels.
    """
    if not data:
        raise SourceUnreadableError(f"{name} is empty")
    header = _read_header(data)
    if header is not None and header.size[0] * header.size[1] > max_pixels:
        raise SourceTooLargeError(
            f"{name} has {header.size[0]}x{header.size[1]} pixels, more than preprocess.max_image_pixels={max_pixels}"
        )
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None or pixels.size == 0:
        if header is None:
            raise SourceUnreadableError(f"{name} is not an image OpenCV or Pillow can read")
        raise SourceCorruptError(f"{name} has a valid image header but its pixel data cannot be decoded (truncated or damaged)")
    if data[:3] == b"\xff\xd8\xff" and not _jpeg_is_complete(data):
        raise SourceCorruptError(f"{name} is a truncated JPEG (no end-of-image marker after its last scan)")
    if pixels.shape[0] * pixels.shape[1] > max_pixels:
        raise SourceTooLargeError(
            f"{name} has {pixels.shape[1]}x{pixels.shape[0]} pixels, more than preprocess.max_image_pixels={max_pixels}"
        )
    rgb = to_rgb8(pixels)
    return apply_exif_orientation(rgb, header.orientation if header is not None else 1)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file into upright (H, W, 3) uint8 RGB (see :func:`decode_image`).

    Raises:
        SourceMissingError: ``path`` does not exist.
        SourceReadError: the subclasses listed in :func:`decode_image`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise SourceMissingError(f"image {path} does not exist") from err
    except IsADirectoryError as err:
        raise SourceUnreadableError(f"image {path} is a directory") from err
    except OSError as err:
        raise SourceUnreadableError(f"image {path} cannot be read: {err}") from err
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def write_image(path: str | Path, rgb: np.ndarray, quality: int = 95) -> Path:
    """Write (H, W, 3) uint8 RGB (or (H, W) gray) atomically; the format follows the file name ending."""
    path = Path(path)
    pixels = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in {".jpg", ".jpeg"} else []
    ok, encoded = cv2.imencode(path.suffix, np.ascontiguousarray(pixels), params)
    if not ok:
        raise SourceUnreadableError(f"OpenCV cannot encode an image as {path.suffix!r} for {path}")
    with atomic_path(path) as temporary:
        temporary.write_bytes(encoded.tobytes())
    return path
