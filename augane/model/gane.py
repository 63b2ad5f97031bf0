"""GANE: graph attention network encoder (paper §III.A, eq. 1-3).

Nodes (eq. 2): the N AU-specific features ``f_v`` of the AU detector's AFG
block (B, N, d) and the DECA global feature ``X_DECA`` (B, D) projected by a
trainable ``E`` (D x d, no bias): N + 1 nodes of dimension d.

1. A shared LayerNorm puts the two kinds of node on one scale (AFG features
   and ``X_DECA`` come from different networks with different magnitudes).
   It makes GANE blind to a shift or rescaling of a node's whole feature
   vector; the detector itself classifies from the direction of f_v
   (cosine similarity with per-AU class vectors), which is kept.
2. GAT (eq. 3): ``model.gat.layers`` torch-geometric ``GATConv`` or
   ``GATv2Conv`` layers over the fully connected node graph (self-loops by
   default), each with ``model.gat.heads`` heads of d / heads channels
   concatenated back to d, an ELU, a residual connection and a LayerNorm.
   The B graphs of a batch are disjoint copies (one batched ``edge_index``,
   built once per batch size and cached).
3. A learnable parameter query token ``T_Q`` is concatenated in front of the
   N + 1 attention-embedded nodes (plus a learned per-node identity
   embedding, so the encoder knows which AU each token stands for) and a
   pre-norm ``torch.nn.TransformerEncoder`` runs over the N + 2 tokens.
4. From the query token's output, linear heads give expression ``exp``
   (psi, 50), pose ``pose`` (theta, 6: global + jaw axis-angle, radians) and
   camera ``cam`` (c = (s, tx, ty), DECA's convention, see
   :mod:`augane.flame.camera`).

Initialisation near DECA (``model.residual_on_deca: true``, the default):
the heads predict offsets on DECA's own cached estimate and their output
layers start at zero, so before the first optimiser step GANE returns
exactly DECA's parameters::

    exp  = exp_DECA  + d_exp
    pose = pose_DECA + d_pose                (axis-angle added component-wise)
    s    = s_DECA * exp(d_log_s)             (relative change; stays positive)
    t    = t_DECA + d_t / s_DECA             (d_t is the image shift, normalised units)

Offsets of scale and translation are thus in image terms (a relative
scale change, a shift in [-1, 1] coordinates), commensurate with the
other outputs; a translation offset in metres would move the face by
s_DECA (about 8 for a DECA crop) times as much per unit of output.

Jaw range (``model.jaw.opening_min``, ``model.jaw.side_max``, radians; null
= unlimited): the jaw's axis-angle ``pose[:, 3:6]`` is clamped after the
heads to an anatomical range, as SMIRK limits its jaw: the opening about
+x (FLAME's convention: positive opens) is at least ``opening_min`` (0: the
lower teeth cannot rise through the upper ones) and the sideways yaw and
roll ``pose[:, 4:6]`` stay within +-``side_max``. Nothing else in the
losses keeps a closed jaw from closing further: the lips still meet, so the
landmarks barely see it. The clamp applies in both modes, so with
``residual_on_deca`` GANE starts at DECA's estimate with the jaw brought
into this range.

With ``residual_on_deca: false`` (the ablation) the heads regress the
parameters directly from a default (PyTorch) initialisation, as plain
regression; DECA's parameters are then not needed.

Zero-initialised output layers mean that at the very first backward pass
only the heads receive non-zero gradients; every other parameter receives
them from the second step on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GATv2Conv

from augane.errors import ConfigError
from augane.model.graph import EdgeCache

#: Sizes of the parameters GANE predicts (DECA's layout).
EXPRESSION_DIM = 50
POSE_DIM = 6
CAMERA_DIM = 3

_GAT_KINDS = {"gat": GATConv, "gatv2": GATv2Conv}

#: Floor of DECA's camera scale when converting an image shift to a translation (DECA's s is about 5-10).
_MIN_SCALE = 1e-3


class GATBlock(nn.Module):
    """One graph-attention layer: ``LayerNorm(x + ELU(GAT(x)))`` on (V, dim) node features."""

    def __init__(self, dim: int, heads: int, dropout: float, kind: str) -> None:
        super().__init__()
        conv = _GAT_KINDS[kind]
        self.conv = conv(dim, dim // heads, heads=heads, concat=True, dropout=dropout, add_self_loops=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, nodes: Tensor, edge_index: Tensor) -> Tensor:
        """(V, dim) node features, (2, E) edges -> (V, dim)."""
        return self.norm(nodes + F.elu(self.conv(nodes, edge_index)))


class GANE(nn.Module):
    """Regresses FLAME expression, pose and camera from AU-specific and global face features.

    Args:
        num_aus: N, AU-specific feature nodes per sample (27 for OpenGraphAU).
        node_dim: d, their dimension (512 for the released ResNet-50 detectors).
        global_dim: D, dimension of DECA's global feature (2048 for ResNet-50).
        gat_layers, gat_heads, gat_dropout, gat_kind: GAT settings; ``gat_kind``
            is ``"gat"`` (GATConv) or ``"gatv2"`` (GATv2Conv); d must be a
            multiple of ``gat_heads``; ``gat_dropout`` is attention dropout.
        self_loops: whether each node also attends to itself.
        transformer_layers, transformer_heads, transformer_feedforward,
            transformer_dropout: encoder settings; d must be a multiple of
            ``transformer_heads``.
        residual_on_deca: predict offsets on DECA's estimate (zero-initialised
            heads) instead of the parameters themselves.
        expression_dim: size of psi (50 in DECA's layout).
        jaw_opening_min: least jaw opening (rad) or None for no limit.
        jaw_side_max: largest jaw yaw and roll magnitude (rad) or None for no limit.
    """

    def __init__(
        self,
        num_aus: int,
        node_dim: int,
        global_dim: int,
        *,
        gat_layers: int = 2,
        gat_heads: int = 4,
        gat_dropout: float = 0.0,
        gat_kind: str = "gatv2",
        self_loops: bool = True,
        transformer_layers: int = 4,
        transformer_heads: int = 8,
        transformer_feedforward: int = 2048,
        transformer_dropout: float = 0.1,
        residual_on_deca: bool = True,
        expression_dim: int = EXPRESSION_DIM,
        jaw_opening_min: float | None = 0.0,
        jaw_side_max: float | None = 0.2,
    ) -> None:
        super().__init__()
        if jaw_side_max is not None and jaw_side_max < 0:
            raise ConfigError(f"model.jaw.side_max must be >= 0 radians or null, got {jaw_side_max}")
        if num_aus < 1 or node_dim < 1 or global_dim < 1 or expression_dim < 1:
            raise ValueError(
                f"GANE needs positive sizes, got num_aus={num_aus}, node_dim={node_dim}, "
                f"global_dim={global_dim}, expression_dim={expression_dim}"
            )
        if gat_kind not in _GAT_KINDS:
            raise ConfigError(f"model.gat.kind must be one of {sorted(_GAT_KINDS)}, got {gat_kind!r}")
        for key, heads in (("model.gat.heads", gat_heads), ("model.transformer.heads", transformer_heads)):
            if heads < 1 or node_dim % heads:
                raise ConfigError(
                    f"{key} = {heads} must divide the node feature dimension d = {node_dim} "
                    "(the AU detector's AFG feature size)"
                )
        self.num_aus = num_aus
        self.node_dim = node_dim
        self.global_dim = global_dim
        self.expression_dim = expression_dim
        self.residual_on_deca = residual_on_deca
        self.jaw_opening_min = jaw_opening_min
        self.jaw_side_max = jaw_side_max
        self.edges = EdgeCache(self_loops=self_loops)

        self.global_projection = nn.Linear(global_dim, node_dim, bias=False)  # E of eq. 2
        self.input_norm = nn.LayerNorm(node_dim)
        self.gat = nn.ModuleList(GATBlock(node_dim, gat_heads, gat_dropout, gat_kind) for _ in range(gat_layers))

        self.query_token = nn.Parameter(torch.randn(1, 1, node_dim) * 0.02)
        self.node_embedding = nn.Parameter(torch.randn(1, num_aus + 1, node_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            node_dim,
            transformer_heads,
            dim_feedforward=transformer_feedforward,
            dropout=transformer_dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, transformer_layers, norm=nn.LayerNorm(node_dim), enable_nested_tensor=False
        )
        self.heads = nn.ModuleDict(
            {
                "exp": nn.Linear(node_dim, expression_dim),
                "pose": nn.Linear(node_dim, POSE_DIM),
                "cam": nn.Linear(node_dim, CAMERA_DIM),
            }
        )
        if residual_on_deca:
            for head in self.heads.values():
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)

    @classmethod
    def from_config(
        cls,
        section: Mapping[str, Any],
        num_aus: int,
        node_dim: int,
        global_dim: int,
        expression_dim: int = EXPRESSION_DIM,
    ) -> GANE:
        """Build from the validated ``model:`` config section (defaults filled by the schema)."""
        gat, transformer = section["gat"], section["transformer"]
        return cls(
            num_aus,
            node_dim,
            global_dim,
            gat_layers=gat["layers"],
            gat_heads=gat["heads"],
            gat_dropout=gat["dropout"],
            gat_kind=gat["kind"],
            self_loops=gat["self_loops"],
            transformer_layers=transformer["layers"],
            transformer_heads=transformer["heads"],
            transformer_feedforward=transformer["feedforward"],
            transformer_dropout=transformer["dropout"],
            residual_on_deca=section["residual_on_deca"],
            expression_dim=expression_dim,
            jaw_opening_min=section["jaw"]["opening_min"],
            jaw_side_max=section["jaw"]["side_max"],
        )

    def limit_jaw(self, pose: Tensor) -> Tensor:
        """(B, 6) pose -> the same with the jaw ``[:, 3:6]`` clamped to the configured range (see module docstring)."""
        opening, side = pose[:, 3:4], pose[:, 4:6]
        if self.jaw_opening_min is not None:
            opening = opening.clamp_min(self.jaw_opening_min)
        if self.jaw_side_max is not None:
            side = side.clamp(-self.jaw_side_max, self.jaw_side_max)
        return torch.cat([pose[:, :3], opening, side], dim=1)

    def embed_nodes(self, afg: Tensor, deca_feature: Tensor) -> Tensor:
        """Eq. 2-3: (B, N, d) AU features and (B, D) global feature -> (B, N + 1, d) attention-embedded nodes."""
        batch, num_aus, dim = afg.shape
        weight = self.global_projection.weight
        nodes = torch.cat([afg.to(weight.dtype), self.global_projection(deca_feature.to(weight.dtype))[:, None]], 1)
        nodes = self.input_norm(nodes)
        num_nodes = num_aus + 1
        flat = nodes.reshape(batch * num_nodes, dim)
        edge_index = self.edges.get(batch, num_nodes, flat.device)
        for block in self.gat:
            flat = block(flat, edge_index)
        return flat.reshape(batch, num_nodes, dim)

    def forward(
        self, afg: Tensor, deca_feature: Tensor, deca: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Predict FLAME parameters.

        Args:
            afg: (B, N, d) AU-specific features f_v (any float dtype).
            deca_feature: (B, D) DECA global feature X_DECA.
            deca: DECA's own parameters by name, at least ``exp`` (B, 50),
                ``pose`` (B, 6), ``cam`` (B, 3); required when
                ``residual_on_deca``, ignored otherwise.
        Returns:
            ``{"exp": (B, 50), "pose": (B, 6), "cam": (B, 3)}``: psi, theta
            (axis-angle, radians) and c = (s, tx, ty).
        """
        self._check_inputs(afg, deca_feature, deca)
        nodes = self.embed_nodes(afg, deca_feature) + self.node_embedding
        tokens = torch.cat([self.query_token.expand(nodes.shape[0], -1, -1), nodes], dim=1)
        query = self.encoder(tokens)[:, 0]
        raw = {name: head(query) for name, head in self.heads.items()}
        if not self.residual_on_deca:
            return {**raw, "pose": self.limit_jaw(raw["pose"])}
        cam = deca["cam"]
        deca_scale = cam[:, :1]
        scale = deca_scale * torch.exp(raw["cam"][:, :1])
        translation = cam[:, 1:] + raw["cam"][:, 1:] / deca_scale.clamp_min(_MIN_SCALE)
        return {
            "exp": deca["exp"] + raw["exp"],
            "pose": self.limit_jaw(deca["pose"] + raw["pose"]),
            "cam": torch.cat([scale, translation], dim=1),
        }

    def _check_inputs(self, afg: Tensor, deca_feature: Tensor, deca: Mapping[str, Tensor] | None) -> None:
        if afg.ndim != 3 or afg.shape[1:] != (self.num_aus, self.node_dim):
            raise ValueError(f"afg must be (B, {self.num_aus}, {self.node_dim}), got {tuple(afg.shape)}")
        if deca_feature.shape != (afg.shape[0], self.global_dim):
            raise ValueError(
                f"deca_feature must be (B, {self.global_dim}) with B = {afg.shape[0]}, got {tuple(deca_feature.shape)}"
            )
        if not self.residual_on_deca:
            return
        if deca is None:
            raise ValueError("model.residual_on_deca is true: pass DECA's parameters (exp, pose, cam) to GANE")
        expected = {"exp": self.expression_dim, "pose": POSE_DIM, "cam": CAMERA_DIM}
        for name, size in expected.items():
            value = deca.get(name)
            if value is None or value.shape != (afg.shape[0], size):
                got = None if value is None else tuple(value.shape)
                raise ValueError(f"DECA parameter {name!r} must be (B={afg.shape[0]}, {size}), got {got}")
