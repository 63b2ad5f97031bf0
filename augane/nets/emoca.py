"""EMOCA's coarse model (a baseline): DECA's ``E_flame`` plus EMOCA's expression encoder.

EMOCA (Danecek et al. 2022) keeps DECA's coarse encoder frozen for identity,
texture, lighting, camera and pose, and adds an expression encoder
``E_expression`` trained with an emotion-consistency loss. Its released
checkpoints are PyTorch Lightning files (``*.ckpt``) whose ``state_dict`` holds
the whole ``DecaModule``:

- ``deca.E_flame.{encoder,layers}.*`` -- DECA's coarse encoder (ResNet-50);
- ``deca.E_expression.encoder.*`` + ``deca.E_expression.layers.*`` -- the
  expression encoder, a second ResNet-50 with its own regressor
  (``expression_backbone: deca_clone``, the released EMOCA), or
  ``deca.E_expression.resnet.*`` (a view of ``E_flame``) + ``deca.E_expression.layers.*``
  -- a second regressor on DECA's feature (``deca_parallel``);
- the detail networks, FLAME/texture buffers, renderer buffers, MICA (EMOCA v2)
  and loss networks, which the coarse baseline does not use (reported as ignored).

The expression regressor outputs 50 expression coefficients, optionally
followed by pose: 3 values = jaw pose (EMOCA's ``exp_deca_jaw_pose``), 6 =
global then jaw pose. The count is read from the file. EMOCA v2 takes its
identity from MICA; this baseline keeps DECA's shape (the AU evaluation
depends on expression and jaw pose).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from augane.errors import CheckpointError
from augane.nets.checkpoint import (
    CheckpointInfo,
    checkpoint_info,
    find_state_dict,
    key_families,
    load_state_dict_strict,
    read_checkpoint,
    strip_prefix,
)
from augane.nets.deca import (
    DECA_NUM_PARAMS,
    DECA_PARAM_LAYOUT,
    DecaCoarseEncoder,
    DecaOutput,
    check_backbone,
    encoder_dims,
)

#: Expression coefficients EMOCA regresses (FLAME expression components).
EMOCA_NUM_EXP: int = 50

#: Meaning of the values after the 50 expression coefficients, by count.
EMOCA_POSE_OUTPUTS: dict[int, str] = {0: "none", 3: "jaw", 6: "global+jaw"}

_PREFIX = "deca."


class ExpressionHead(nn.Module):
    """EMOCA's expression regressor ``layers`` on a D-dimensional feature (Linear -> ReLU -> Linear)."""

    def __init__(self, feature_dim: int, hidden: int, outputs: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, outputs))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.layers(feature)


@dataclass
class EmocaOutput:
    """Output of :class:`EmocaCoarse`.

    Attributes:
        deca: DECA's own output (feature X_DECA and 236 parameters).
        exp: (B, 50) EMOCA expression coefficients.
        pose: (B, 6) pose with EMOCA's predicted parts replacing DECA's (radians;
            global then jaw axis-angle); equal to DECA's pose when EMOCA predicts none.
    """

    deca: DecaOutput
    exp: torch.Tensor
    pose: torch.Tensor

    def params(self) -> torch.Tensor:
        """(B, 236) DECA layout with EMOCA's expression and pose substituted."""
        parts = dict(zip(DECA_PARAM_LAYOUT, torch.split(self.deca.params, list(DECA_PARAM_LAYOUT.values()), dim=-1)))
        parts["exp"], parts["pose"] = self.exp, self.pose
        return torch.cat([parts[name] for name in DECA_PARAM_LAYOUT], dim=-1)


class EmocaCoarse(nn.Module):
    """EMOCA's coarse model: ``E_flame`` (DECA) and ``E_expression``.

    Args:
        backbone: ResNet depth of both trunks.
        hidden: hidden width of both regressors.
        expression_outputs: outputs of the expression regressor (50, 53 or 56).
        parallel: ``True`` for the ``deca_parallel`` layout (expression regressor on
            DECA's feature, no second trunk); ``False`` for ``deca_clone``.
    Input: (B, 3, S, S) RGB in [0, 1], as DECA.
    """

    def __init__(self, backbone: str = "resnet50", hidden: int = 1024, expression_outputs: int = EMOCA_NUM_EXP,
                 parallel: bool = False):
        super().__init__()
        pose_outputs = expression_outputs - EMOCA_NUM_EXP
        if pose_outputs not in EMOCA_POSE_OUTPUTS:
            raise ValueError(
                f"EMOCA's expression regressor has 50 expression outputs plus 0, 3 or 6 pose outputs, got {expression_outputs}"
            )
        self.E_flame = DecaCoarseEncoder(backbone, hidden=hidden)
        if parallel:
            self.E_expression = ExpressionHead(self.E_flame.feature_dim, hidden, expression_outputs)
        else:
            self.E_expression = DecaCoarseEncoder(backbone, hidden=hidden, num_params=expression_outputs)
        self.parallel = parallel
        self.pose_outputs = pose_outputs
        self.backbone = backbone
        self.checkpoint_info: CheckpointInfo | None = None

    def forward(self, images: torch.Tensor) -> EmocaOutput:
        deca = self.E_flame(images)
        if self.parallel:
            code = self.E_expression(deca.feature)
        else:
            code = self.E_expression(images).params
        exp, extra = code[:, :EMOCA_NUM_EXP], code[:, EMOCA_NUM_EXP:]
        pose = deca.split()["pose"]
        if self.pose_outputs == 3:
            pose = torch.cat([pose[:, :3], extra], dim=-1)
        elif self.pose_outputs == 6:
            pose = extra
        return EmocaOutput(deca=deca, exp=exp, pose=pose)


def load_emoca(path: str | Path, backbone: str | None = None, map_location: str | torch.device = "cpu") -> EmocaCoarse:
    """Build EMOCA's coarse model from a released Lightning checkpoint (or a file in its layout).

    Args:
        path: ``.ckpt`` whose ``state_dict`` has ``deca.E_flame.*`` and ``deca.E_expression.*``.
        backbone: the ResNet depth the config declares; ``None`` accepts the file's.
        map_location: where tensors are loaded.
    Returns:
        The model in eval mode, with :attr:`checkpoint_info`.
    Raises:
        CheckpointError: a missing part or any key/shape mismatch.
    """
    path = Path(path)
    content = read_checkpoint(path, map_location=map_location)
    state = strip_prefix(find_state_dict(content, path))
    flame_prefix, exp_prefix = f"{_PREFIX}E_flame.", f"{_PREFIX}E_expression."
    for prefix in (flame_prefix, exp_prefix):
        if not any(key.startswith(prefix) for key in state):
            raise CheckpointError(
                f"{path} is not an EMOCA checkpoint: its state dict has no '{prefix}*' keys "
                f"(it has {', '.join(key_families(state)[:12])})"
            )
    depth, hidden, outputs = encoder_dims(state, f"{path}", prefix=flame_prefix)
    check_backbone(backbone, depth, str(path))
    if outputs != DECA_NUM_PARAMS:
        raise CheckpointError(f"{path}: {flame_prefix}layers regresses {outputs} values, DECA's layout has {DECA_NUM_PARAMS}")
    parallel = any(key.startswith(f"{exp_prefix}resnet.") for key in state)
    if parallel:
        last = state.get(f"{exp_prefix}layers.2.weight")
        if last is None:
            raise CheckpointError(f"{path} lacks {exp_prefix}layers.2.weight (EMOCA's expression regressor)")
        exp_outputs = int(last.shape[0])
    else:
        exp_depth, _, exp_outputs = encoder_dims(state, str(path), prefix=exp_prefix)
        if exp_depth != depth:
            raise CheckpointError(f"{path}: E_expression has a {exp_depth} trunk but E_flame a {depth} one")
    model = EmocaCoarse(depth, hidden=hidden, expression_outputs=exp_outputs, parallel=parallel)
    keep = (flame_prefix, exp_prefix)
    ignore = (f"{exp_prefix}resnet.",) if parallel else ()
    report = load_state_dict_strict(
        model, state, path, rename=lambda key: key.removeprefix(_PREFIX), keep_prefixes=keep,
        ignore_prefixes=ignore, network=f"EMOCA coarse ({depth}, {'parallel' if parallel else 'clone'})",
    )
    ignored = [name for name in content if name != "state_dict"] if isinstance(content, Mapping) else []
    model.checkpoint_info = checkpoint_info(path, content, report, ignored)
    return model.eval()
