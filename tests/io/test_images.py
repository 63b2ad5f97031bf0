"""Reading images of every common kind into upright 8-bit RGB, and refusing bad ones with the right kind."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from augane.io.images import decode_image, list_images, read_image, to_rgb8, write_image
from augane.io.source_errors import (
    SourceCorruptError,
    SourceMissingError,
    SourceTooLargeError,
    SourceUnreadableError,
)


@pytest.fixture(scope="module")
def photo(astronaut):
    """A (96, 80, 3) corner of the astronaut photo: small, real, not square."""
    return np.ascontiguousarray(astronaut[100:196, 180:260])


def _encode(pixels: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, pixels)
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip_rgb(photo, ext):
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []
    ok, buffer = cv2.imencode(ext, photo[..., ::-1], params)
    np.testing.assert_array_equal(decode_image(buffer.tobytes()), photo)


def test_jpeg_is_close(photo):
    decoded = decode_image(_encode(photo[..., ::-1], ".jpg"))
    assert decoded.shape == photo.shape and np.abs(decoded.astype(int) - photo).mean() < 4


def test_grayscale_becomes_three_equal_channels(photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    decoded = decode_image(_encode(gray, ".png"))
    assert decoded.shape == (*gray.shape, 3)
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], gray)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16_bit_is_scaled_to_8_bit(photo, ext):
    deep = photo[..., ::-1].astype(np.uint16) * 257
    np.testing.assert_array_equal(decode_image(_encode(deep, ext)), photo)


def test_float_tiff_in_unit_range(photo):
    decoded = decode_image(_encode((photo[..., ::-1] / 255.0).astype(np.float32), ".tif"))
    assert np.abs(decoded.astype(int) - photo).mean() < 2
    overshoot = to_rgb8(np.array([[[0.5, 1.2, 0.0]]], np.float32))
    np.testing.assert_array_equal(overshoot, [[[0, 255, 128]]])


def test_alpha_is_composited_over_black(photo):
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[:, : photo.shape[1] // 2] = 255
    alpha[:, photo.shape[1] // 2 :] = 0
    bgra = np.dstack([photo[..., ::-1], alpha])
    decoded = decode_image(_encode(bgra, ".png"))
    half = photo.shape[1] // 2
    np.testing.assert_array_equal(decoded[:, :half], photo[:, :half])
    assert decoded[:, half:].max() == 0
    gray_alpha = to_rgb8(np.dstack([np.full((4, 4), 200, np.uint8), np.full((4, 4), 128, np.uint8)]))
    assert gray_alpha.shape == (4, 4, 3) and np.all(gray_alpha == round(200 * 128 / 255))


def test_exif_orientation_is_applied(photo):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    Image.fromarray(photo).save(buffer, format="JPEG", quality=98, exif=exif)
    decoded = decode_image(buffer.getvalue())
    upright = np.rot90(photo, k=-1)
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(int) - upright).mean() < 4


def test_truncated_files_are_corrupt(photo):
    jpeg = _encode(photo[..., ::-1], ".jpg")
    for cut in (len(jpeg) // 2, len(jpeg) - 10):
        with pytest.raises(SourceCorruptError, match="truncated|cannot be decoded"):
            decode_image(jpeg[:cut], name="cut.jpg")
    png = _encode(photo[..., ::-1], ".png")
    with pytest.raises(SourceCorruptError):
        decode_image(png[: len(png) // 2], name="cut.png")


def test_non_images_are_unreadable(tmp_path):
    with pytest.raises(SourceUnreadableError, match="empty"):
        decode_image(b"", name="empty.png")
    with pytest.raises(SourceUnreadableError, match="not an image"):
        decode_image(b"this is a text file, not a picture\n" * 10, name="notes.jpg")
    with pytest.raises(SourceMissingError, match="does not exist"):
        read_image(tmp_path / "gone.png")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(SourceUnreadableError, match="directory"):
        read_image(tmp_path / "folder.png")


def test_too_large_is_refused_before_decoding(photo):
    data = _encode(photo[..., ::-1], ".png")
    with pytest.raises(SourceTooLargeError, match="max_image_pixels"):
        decode_image(data, max_pixels=photo.shape[0] * photo.shape[1] - 1)
    assert decode_image(data, max_pixels=photo.shape[0] * photo.shape[1]).shape == photo.shape


def test_list_images_recursive_case_insensitive_skips_hidden(tmp_path, photo):
    for name in ["b.JPG", "a.png", "sub/c.webp", "sub/deeper/d.TIFF", ".hidden/e.png", "._f.png", "notes.txt"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [path.relative_to(tmp_path).as_posix() for path in list_images(tmp_path)]
    assert found == ["a.png", "b.JPG", "sub/c.webp", "sub/deeper/d.TIFF"]


def test_write_image_is_readable(tmp_path, photo):
    path = write_image(tmp_path / "x.png", photo)
    np.testing.assert_array_equal(read_image(path), photo)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
