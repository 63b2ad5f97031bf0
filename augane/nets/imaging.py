"""Differentiable resizing and cropping of (B, C, H, W) image batches, with torchvision's size conventions.

Bilinear resizing uses ``antialias=True`` and ``align_corners=False``, which is
PyTorch's match of PIL's bilinear filter (what torchvision's ``Resize`` runs
on PIL images), so a network sees the same pixels whether its input went
through the reference PIL pipeline or through these functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of (B, C, H, W) to (B, C, height, width); identity when the size already fits."""
    if images.shape[-2:] == (height, width):
        return images
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Output (height, width) of torchvision's ``Resize(size)``: shorter side ``size``, longer truncated."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def resize_shorter_side(images: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision ``Resize(size)`` on (B, C, H, W): scale so the shorter side is ``size`` pixels."""
    return resize(images, *shorter_side_size(images.shape[-2], images.shape[-1], size))


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision ``CenterCrop(size)`` on (B, C, H, W) with H, W >= ``size`` (offsets rounded as torchvision does)."""
    height, width = images.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"cannot centre-crop {size}x{size} pixels from a {height}x{width} image")
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return images[..., top:top + size, left:left + size]
