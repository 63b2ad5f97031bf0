"""The DECA-style crop: box, transform round trip and warp alignment."""

from __future__ import annotations

import numpy as np

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
