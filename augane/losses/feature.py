"""AU feature loss L_auFeat (paper eq. 7).

``L_auFeat = || AFG(I) - AFG(I_Re) ||_2``: the AU-specific features of the
input image (cached by the features stage) against those of the rendered
face (computed during training by the frozen AU detector, in eval mode, on
the render composited over the input crop). The norm is taken per sample
over all N x d feature values together, as eq. 7 writes it (not squared,
not divided by N or d), then averaged over the batch.
"""

from __future__ import annotations

from torch import Tensor


def au_feature_loss(input_features: Tensor, rendered_features: Tensor) -> dict[str, Tensor]:
    """L_auFeat (eq. 7).

    Args:
        input_features: (B, N, d) AFG features of the input images (cached, often float16).
        rendered_features: (B, N, d) AFG features of the rendered faces (carry the gradient).
    Returns:
        ``{"au_feature": scalar}``: mean over the batch of the per-sample L2 norm, in float32.
    """
    if input_features.ndim != 3 or input_features.shape != rendered_features.shape:
        raise ValueError(
            "input and rendered AFG features must both be (B, N, d), got "
            f"{tuple(input_features.shape)} and {tuple(rendered_features.shape)}"
        )
    difference = rendered_features.float() - input_features.detach().float()
    per_sample = difference.flatten(1).norm(dim=1)
    return {"au_feature": per_sample.mean()}
