"""Running the feature networks on a batch of face crops.

One call turns (B, S, S, 3) uint8 crops into the arrays of ``features.zarr``:
the AU detector sees the crops through its reference preprocessing
(:func:`~augane.nets.au_preprocess.au_detector_input`), DECA and EMOCA see
them resized to ``resources.deca.input_size`` in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from augane.features.networks import FeatureNetworks
from augane.features.runtime import InferenceSettings
from augane.nets.au_preprocess import au_detector_input
from augane.nets.imaging import resize


@dataclass
class BatchFeatures:
    """Features of B samples, as numpy arrays on the host.

    Attributes:
        au_prob: (B, K) float32 AU detector outputs.
        afg: (B, N, d) float16 AU-specific features.
        deca_feature: (B, D) float16 DECA global feature.
        deca_params: (B, 236) float32 DECA parameters.
        emoca_exp: (B, 50) float32, or ``None`` without EMOCA.
        emoca_pose: (B, 6) float32, or ``None`` without EMOCA.
    """

    au_prob: np.ndarray
    afg: np.ndarray
    deca_feature: np.ndarray
    deca_params: np.ndarray
    emoca_exp: np.ndarray | None = None
    emoca_pose: np.ndarray | None = None

    def finite(self) -> np.ndarray:
        """(B,) bool: every output of the sample is finite."""
        arrays = [self.au_prob, self.afg, self.deca_feature, self.deca_params, self.emoca_exp, self.emoca_pose]
        ok = np.ones(self.au_prob.shape[0], dtype=bool)
        for array in arrays:
            if array is not None:
                ok &= np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
        return ok


class FeatureExtractor:
    """Applies the feature networks to batches, on the configured device and precision.

    Args:
        networks: the loaded networks (moved to ``settings.device`` here).
        settings: device, autocast, memory layout, compilation, batch size.
    """

    def __init__(self, networks: FeatureNetworks, settings: InferenceSettings):
        self.networks = networks
        self.settings = settings
        modules = {"au_detector": networks.au_detector, "deca": networks.deca, "emoca": networks.emoca}
        self._modules = {}
        for name, module in modules.items():
            if module is None:
                continue
            module = module.to(settings.device, memory_format=settings.memory_format).eval()
            self._modules[name] = torch.compile(module, dynamic=False) if settings.compile else module

    def __call__(self, crops: np.ndarray) -> BatchFeatures:
        """Features of (B, S, S, 3) uint8 RGB crops."""
        count = crops.shape[0]
        batch = crops
        if self.settings.compile and 0 < count < self.settings.batch_size:
            # a fixed batch size avoids recompiling; eval-mode outputs do not depend on the padding
            padding = np.repeat(crops[-1:], self.settings.batch_size - count, axis=0)
            batch = np.concatenate([crops, padding])
        pixels = torch.from_numpy(np.ascontiguousarray(batch))
        if self.settings.device.type == "cuda":
            pixels = pixels.pin_memory()
        pixels = pixels.to(self.settings.device, non_blocking=True)
        images = pixels.permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=self.settings.memory_format)
        au_settings = self.networks.au_settings
        size = self.networks.deca_input_size
        with torch.inference_mode(), self.settings.autocast():
            au = self._modules["au_detector"](au_detector_input(images, au_settings.resize, au_settings.input_size))
            deca_images = resize(images, size, size)
            deca = self._modules["deca"](deca_images)
            emoca = self._modules["emoca"](deca_images) if "emoca" in self._modules else None
            arrays = {
                "au_prob": au.prob.float(),
                "afg": au.afg.half(),
                "deca_feature": deca.feature.half(),
                "deca_params": deca.params.float(),
            }
            if emoca is not None:
                arrays["emoca_exp"] = emoca.exp.float()
                arrays["emoca_pose"] = emoca.pose.float()
        return BatchFeatures(**{name: value[:count].cpu().numpy() for name, value in arrays.items()})
