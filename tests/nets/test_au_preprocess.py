"""The differentiable AU-detector preprocessing matches the reference PIL pipeline; the frozen detector stays frozen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from augane.nets.au_preprocess import IMAGENET_MEAN, IMAGENET_STD, FrozenAuDetector, au_detector_input
from augane.nets.imaging import center_crop, shorter_side_size
from augane.nets.mefarg import MEFARG


def _reference_pipeline(image: np.ndarray, resize: int, crop: int) -> np.ndarray:
    """Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize, as torchvision runs it on a PIL image."""
    pil = Image.fromarray(image)
    width, height = pil.size
    if width <= height:
        size = (resize, int(resize * height / width))
    else:
        size = (int(resize * width / height), resize)
    resized = pil.resize(size, Image.BILINEAR)
    top = int(round((size[1] - crop) / 2.0))
    left = int(round((size[0] - crop) / 2.0))
    pixels = np.asarray(resized.crop((left, top, left + crop, top + crop)), dtype=np.float32) / 255.0
    return (pixels - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)


def _as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_matches_the_pil_pipeline_on_real_photos(photo, request):
    image = request.getfixturevalue(photo)
    expected = _reference_pipeline(image, 256, 224)
    ours = au_detector_input(_as_batch(image), 256, 224)[0].permute(1, 2, 0).numpy()
    difference = np.abs(ours - expected)
    # PIL rounds the resized image to 8 bits: one grey level is 1/255/0.225 = 0.0174 normalised units
    assert difference.max() < 0.02
    assert difference.mean() < 0.008


def test_gradients_reach_the_images(astronaut):
    images = _as_batch(astronaut[::4, ::4]).requires_grad_(True)
    out = au_detector_input(images, resize=72, crop=64)
    assert out.shape == (1, 3, 64, 64)
    (out ** 2).sum().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_sizes_follow_torchvision_conventions():
    assert shorter_side_size(600, 512, 256) == (300, 256)
    assert shorter_side_size(224, 300, 256) == (256, 342)
    assert center_crop(torch.zeros(1, 3, 300, 256), 224).shape == (1, 3, 224, 224)
    with pytest.raises(ValueError, match="cannot centre-crop 224x224 pixels from a 200x256 image"):
        center_crop(torch.zeros(1, 3, 200, 256), 224)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        au_detector_input(torch.zeros(3, 64, 64))


class _Reconstructor(nn.Module):
    """A trainable model that holds the frozen detector, as a training loop would."""

    def __init__(self, detector: FrozenAuDetector):
        super().__init__()
        self.layer = nn.Conv2d(3, 3, 1)
        self.au = detector


def test_frozen_detector_stays_in_eval_mode_and_passes_gradients_to_images():
    torch.manual_seed(0)
    frozen = FrozenAuDetector(MEFARG("opengraphau", "anfl", "resnet18", channels=32), resize=72, crop=64)
    model = _Reconstructor(frozen).train()
    assert model.layer.training
    assert not any(module.training for module in frozen.modules())
    assert not any(parameter.requires_grad for parameter in frozen.parameters())
    norm = frozen.detector.backbone.bn1
    before = norm.running_mean.clone()
    images = torch.rand(2, 3, 80, 80, requires_grad=True)
    out = model.au(model.layer(images))
    out.afg.sum().backward()
    torch.testing.assert_close(norm.running_mean, before, rtol=0, atol=0)
    assert images.grad.abs().sum() > 0
    assert frozen.detector.backbone.conv1.weight.grad is None
