"""The AU detector's input pipeline as a differentiable function, and a frozen detector for losses.

The reference evaluates ME-GraphAU/OpenGraphAU on PIL images with
``Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet mean/std)``.
:func:`au_detector_input` does the same on (B, 3, H, W) tensors in [0, 1], so
it can run on rendered images inside a loss and pass gradients back to them;
on real photos it matches the PIL pipeline up to PIL's 8-bit rounding after
the resize (see the tests). Sizes come from ``resources.au_detector.resize``
and ``resources.au_detector.input_size``.

:class:`FrozenAuDetector` wraps a detector for the AU feature loss: the
detector stays in eval mode (BatchNorm uses its running statistics and never
updates them) whatever ``.train()`` calls reach it through a parent module,
and its parameters take no gradient, while gradients still flow to the input.
"""

from __future__ import annotations

import torch
from torch import nn

from augane.nets.imaging import center_crop, resize_shorter_side
from augane.nets.mefarg import MEFARG, AuDetectorOutput

#: ImageNet channel means and standard deviations (RGB) used by the detectors.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def au_detector_input(images: torch.Tensor, resize: int = 256, crop: int = 224) -> torch.Tensor:
    """Preprocess images for the AU detector, differentiably.

    Args:
        images: (B, 3, H, W) RGB in [0, 1] (any float dtype, any device).
        resize: shorter side after resizing (reference: 256).
        crop: side of the centre crop (reference: 224).
    Returns:
        (B, 3, crop, crop) normalised with the ImageNet mean and std.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) RGB images, got shape {tuple(images.shape)}")
    cropped = center_crop(resize_shorter_side(images, resize), crop)
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (cropped - mean) / std


class FrozenAuDetector(nn.Module):
    """A MEFARG detector that stays frozen: eval mode always, no parameter gradients, preprocessing included.

    Args:
        detector: the loaded detector.
        resize, crop: preprocessing sizes (see :func:`au_detector_input`).
    Input: (B, 3, H, W) RGB in [0, 1]; output :class:`~augane.nets.mefarg.AuDetectorOutput`.
    """

    def __init__(self, detector: MEFARG, resize: int = 256, crop: int = 224):
        super().__init__()
        self.detector = detector
        self.resize = resize
        self.crop = crop
        detector.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenAuDetector:
        """Ignore ``mode``: the wrapped detector is always in eval mode."""
        self.training = False
        self.detector.eval()
        return self

    def forward(self, images: torch.Tensor) -> AuDetectorOutput:
        return self.detector(au_detector_input(images, self.resize, self.crop))
