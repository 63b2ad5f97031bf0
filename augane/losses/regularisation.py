"""Parameter regulariser L_reg (paper eq. 8), as separately weighted terms.

Eq. 8 is ``||psi||^2 + ||theta||^2 + ||c||^2``; the paper weights the
expression term by 1e-5 and the pose term by 0.1 (``losses.weights``
``reg_expression`` and ``reg_pose``) and gives no value for the camera.

Camera term: penalising ``||c||^2`` itself would pull the scale s towards
zero, shrinking every face, so AUGANE penalises the camera's deviation
from DECA's own estimate for the same image instead, in image units so that
scale and translation are commensurate::

    reg_camera = ((s - s_DECA) / s_DECA)^2 + || s_DECA * (t - t_DECA) ||^2

The first part is the squared relative change of scale, the second the
squared shift of the projected face in normalised image coordinates
(``s_DECA * t`` is how far the translation moves the image, see
:mod:`augane.flame.camera`). With the default weight 1, a 10 % change of
scale or a shift of 0.1 (5 % of the crop) costs 0.01, about the landmark
loss of a well-fitted face: the camera follows the landmarks but is not
free to drift to absorb expression. All terms are per-sample squared
norms averaged over the batch.
"""

from __future__ import annotations

from torch import Tensor


def regularisation_terms(exp: Tensor, pose: Tensor, cam: Tensor, deca_cam: Tensor) -> dict[str, Tensor]:
    """L_reg's terms, unweighted.

    Args:
        exp: (B, E) predicted expression psi.
        pose: (B, 6) predicted pose theta (global + jaw axis-angle, radians).
        cam: (B, 3) predicted camera (s, tx, ty).
        deca_cam: (B, 3) DECA's camera for the same images (the camera prior).
    Returns:
        ``{"reg_expression", "reg_pose", "reg_camera"}``, each a scalar.
    """
    if cam.shape != deca_cam.shape or cam.ndim != 2 or cam.shape[1] != 3:
        raise ValueError(f"cam and deca_cam must both be (B, 3), got {tuple(cam.shape)} and {tuple(deca_cam.shape)}")
    deca_cam = deca_cam.detach()
    deca_scale = deca_cam[:, 0]
    relative_scale = (cam[:, 0] - deca_scale) / deca_scale
    image_shift = deca_scale[:, None] * (cam[:, 1:] - deca_cam[:, 1:])
    return {
        "reg_expression": exp.pow(2).sum(dim=1).mean(),
        "reg_pose": pose.pow(2).sum(dim=1).mean(),
        "reg_camera": (relative_scale.pow(2) + image_shift.pow(2).sum(dim=1)).mean(),
    }
