"""DECA's projection convention: known points land on known pixels."""

from __future__ import annotations

import numpy as np
import torch

from augane.flame.camera import normalised_to_pixels, pixels_to_normalised, project


def test_known_points_land_on_known_pixels():
    points = torch.tensor([[[0.0, 0.0, 0.0], [0.1, 0.2, 0.3]]])
    cam = torch.tensor([[5.0, 0.02, -0.04]])
    projected = project(points, cam)
    # x = s (X + tx), y = -s (Y + ty), z = -s Z
    expected = torch.tensor([[[0.1, 0.2, 0.0], [0.6, -0.8, -1.5]]])
    torch.testing.assert_close(projected, expected)
    pixels = normalised_to_pixels(projected[..., :2], 224)
    torch.testing.assert_close(pixels[0, 0], torch.tensor([123.2, 134.4]))


def test_pixel_round_trip_numpy_and_torch():
    uv = np.array([[0.0, 0.0], [224.0, 224.0], [112.0, 56.0]])
    xy = pixels_to_normalised(uv, 224)
    np.testing.assert_allclose(xy, [[-1, -1], [1, 1], [0, -0.5]])
    np.testing.assert_allclose(normalised_to_pixels(xy, 224), uv)
    uv_t = torch.tensor(uv)
    torch.testing.assert_close(normalised_to_pixels(pixels_to_normalised(uv_t, 224), 224), uv_t)


def test_non_square_image():
    xy = np.array([[1.0, 1.0]])
    np.testing.assert_allclose(normalised_to_pixels(xy, 640, 480), [[640.0, 480.0]])
