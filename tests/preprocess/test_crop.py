"""The DECA-style crop: box, transform round trip and warp alignment."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from augane.preprocess.crop import (
    CropSettings,
    apply_transform,
    crop_square,
    invert_transform,
    square_to_crop_transform,
    warp_to_crop,
)


def test_square_follows_deca_formula():
    points = np.array([[10.0, 20.0], [110.0, 220.0]])
    centre, side = crop_square(points, CropSettings(size=224, box_scale=1.1, crop_scale=1.25))
    np.testing.assert_allclose(centre, [60.0, 120.0])
    assert side == (100 + 200) / 2 * 1.1 * 1.25


def test_transform_round_trip_and_corners():
    transform = square_to_crop_transform(np.array([60.0, 120.0]), 200.0, 224)
    corners = np.array([[-40.0, 20.0], [160.0, 220.0]])
    np.testing.assert_allclose(apply_transform(corners, transform), [[0, 0], [224, 224]])
    points = np.random.default_rng(0).uniform(-50, 300, size=(20, 2))
    back = apply_transform(apply_transform(points, transform), invert_transform(transform))
    np.testing.assert_allclose(back, points, atol=1e-9)


def test_depth_is_scaled_like_xy():
    transform = square_to_crop_transform(np.array([50.0, 50.0]), 100.0, 200)
    mapped = apply_transform(np.array([[50.0, 50.0, 3.0]]), transform)
    np.testing.assert_allclose(mapped, [[100.0, 100.0, 6.0]])


def test_warp_puts_a_source_pixel_where_the_transform_says():
    image = np.zeros((100, 100, 3), np.uint8)
    image[40, 30] = 255  # pixel centre at continuous (30.5, 40.5)
    transform = square_to_crop_transform(np.array([50.0, 50.0]), 100.0, 100)  # identity
    crop = warp_to_crop(image, transform, 100)
    assert tuple(np.argwhere(crop[..., 0] == 255)[0]) == (40, 30)
    scaled = square_to_crop_transform(np.array([50.0, 50.0]), 50.0, 100)  # 2x zoom on the centre
    crop = warp_to_crop(image, scaled, 100)
    expected = apply_transform(np.array([[30.5, 40.5]]), scaled)[0]
    weights = crop[..., 0].astype(float)
    ys, xs = np.mgrid[0:100, 0:100]
    centroid = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum() + 0.5
    np.testing.assert_allclose(centroid, expected, atol=0.05)


def test_large_downscale_is_anti_aliased():
    checker = ((np.indices((800, 800)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.repeat(checker[..., None], 3, axis=2)
    transform = square_to_crop_transform(np.array([400.0, 400.0]), 800.0, 100)  # 8x smaller
    crop = warp_to_crop(image, transform, 100)
    assert abs(crop[5:-5, 5:-5].mean() - 127.5) < 2 and crop[5:-5, 5:-5].std() < 2
    plain = cv2.warpAffine(image, transform, (100, 100), flags=cv2.INTER_LINEAR)[5:-5, 5:-5]  # no area filter
    assert abs(plain.mean() - 127.5) > 50 or plain.std() > 50  # aliased: wrong mean or moire


def test_downscaled_warp_stays_aligned():
    image = np.zeros((1000, 1200, 3), np.uint8)
    image[600:640, 300:340] = 255  # a 40 px square centred at continuous (320, 620)
    transform = square_to_crop_transform(np.array([330.0, 610.0]), 500.0, 100)  # 5x smaller
    crop = warp_to_crop(image, transform, 100).astype(float)[..., 0]
    ys, xs = np.mgrid[0:100, 0:100] + 0.5
    centroid = np.array([(xs * crop).sum(), (ys * crop).sum()]) / crop.sum()
    np.testing.assert_allclose(centroid, apply_transform(np.array([[320.0, 620.0]]), transform)[0], atol=0.05)
    assert crop.sum() / 255 == pytest.approx(8 * 8, rel=0.02)  # the square's area is kept


def test_crop_outside_the_image_is_black():
    image = np.full((50, 50, 3), 200, np.uint8)
    for side in (20.0, 400.0):  # plain warp and pre-shrunk warp
        transform = square_to_crop_transform(np.array([1000.0, 1000.0]), side, 32)
        assert warp_to_crop(image, transform, 32).max() == 0
