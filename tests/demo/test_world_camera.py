"""A whole-image DECA camera re-expressed in a crop's frame projects points where the crop transform puts them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augane.demo.world_camera import camera_from_crop, camera_to_crop
from augane.flame.camera import normalised_to_pixels, project
from augane.preprocess.crop import CropSettings, apply_transform, crop_square, square_to_crop_transform


def _project_pixels(points, cam, size):
    projected = project(torch.tensor(points), torch.tensor(cam))[..., :2]
    return normalised_to_pixels(projected, size).numpy()


@pytest.mark.parametrize("crop_size", [64, 128, 224])
def test_crop_camera_projects_onto_the_transformed_points(crop_size):
    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 0.05, (3, 50, 3))
    cam = np.array([[8.0, 0.01, -0.02], [6.5, -0.03, 0.0], [10.0, 0.0, 0.015]])
    source = 256
    in_image = _project_pixels(points, cam, source)
    transforms = []
    for face in in_image:
        centre, side = crop_square(face, CropSettings(size=crop_size))
        transforms.append(square_to_crop_transform(centre, side, crop_size))
    transforms = np.stack(transforms)
    crop_cam = camera_to_crop(cam, transforms, np.full((3, 2), source), crop_size)
    expected = np.stack([apply_transform(face, t) for face, t in zip(in_image, transforms)])
    np.testing.assert_allclose(_project_pixels(points, crop_cam, crop_size), expected, atol=1e-9)
    np.testing.assert_allclose(camera_from_crop(crop_cam, transforms, np.full((3, 2), source), crop_size), cam,
                               atol=1e-12)


def test_refuses_rotated_transforms_and_non_square_images():
    cam = np.array([[8.0, 0.0, 0.0]])
    rotated = np.array([[[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]])
    with pytest.raises(ValueError, match="axis-aligned"):
        camera_to_crop(cam, rotated, np.array([[256, 256]]), 128)
    with pytest.raises(ValueError, match="square"):
        camera_to_crop(cam, np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]), np.array([[320, 240]]), 128)
