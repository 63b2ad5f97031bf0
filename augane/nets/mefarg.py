"""The MEFARG AU detector (ME-GraphAU and OpenGraphAU) with a ResNet backbone.

Structure, as the reference: the backbone's last feature map as T tokens
(49 at 224 px) of D channels -> ``global_linear`` (LinearBlock D -> d, d = D/4:
512 for ResNet-50, 128 for ResNet-18) -> the head: AFG (one LinearBlock per
AU, mean over tokens: **f_v (B, N, d), the paper's AU-specific features**)
-> a graph over the N AU nodes (ANFL: top-k GCN, stage 1; MEFL: GEM edge
features + gated GCN, stage 2) -> per-AU outputs.

What "probability" means here: each output is the cosine similarity between
an AU's node feature and its learned class vector (``sc``, passed through a
ReLU). Both are non-negative, so outputs lie in [0, 1]; the reference trains
them directly with a (weighted asymmetric) binary cross-entropy and calls an
AU present when the output is >= 0.5. No sigmoid is applied, and the values
are not calibrated probabilities.

Variants (:data:`AU_DETECTOR_VARIANTS`):

- ``opengraphau``: 27 main AUs + 14 left/right sub-AUs (41 outputs); keys
  ``head.main_class_linears.*``, ``head.main_sc`` (27, d), ``head.sub_sc`` (14, d);
  stage 2 adds ``head.edge_extractor.*`` and ``head.gnn.graph_layers.{0,1}.*``.
  A sub-AU output compares its main AU's node with its own class vector.
- ``megraphau_bp4d`` (12 AUs) / ``megraphau_disfa`` (8 AUs): keys
  ``head.class_linears.*``, ``head.sc`` (N, d); stage 2 adds
  ``head.edge_extractor.*``, ``head.gnn.{U,V,A,B,E}{1,2}``, ``head.gnn.bn{v,e}{1,2}``
  and ``head.edge_fc`` (AU-relation classifier on the edges).

The ANFL neighbour count is not stored in checkpoints; it is the reference's
per-dataset setting (4 for BP4D and the hybrid data, 3 for DISFA).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from augane.aus import (
    MEGRAPHAU_BP4D_AUS,
    MEGRAPHAU_DISFA_AUS,
    OPENGRAPHAU_MAIN_AUS,
    OPENGRAPHAU_SUB_AUS,
    au_label,
)
from augane.errors import CheckpointError
from augane.nets.au_graph import (
    EdgeFeatureExtractor,
    LinearBlock,
    PairedGatedGraph,
    StackedGatedGraph,
    TopKGraph,
    au_features,
    cosine_scores,
)
from augane.nets.checkpoint import (
    CheckpointInfo,
    checkpoint_info,
    find_state_dict,
    load_state_dict_strict,
    read_checkpoint,
    strip_prefix,
)
from augane.nets.deca import check_backbone
from augane.nets.resnet import ResNet, infer_resnet_depth, resnet_feature_dim

#: Graph heads: ANFL (stage 1) and MEFL (stage 2).
AU_DETECTOR_HEADS: tuple[str, ...] = ("anfl", "mefl")


@dataclass(frozen=True)
class AuDetectorVariant:
    """One released family of MEFARG detectors.

    Attributes:
        name: config name (``resources.au_detector.variant``).
        main_aus: AU numbers of the graph nodes, in output order.
        sub_aus: left/right sub-AU names output after the main AUs (OpenGraphAU).
        neighbors: top-k of the ANFL graph in the reference training config.
        family: ``"megraphau"`` or ``"opengraphau"`` (decides the key names).
    """

    name: str
    main_aus: tuple[int, ...]
    sub_aus: tuple[str, ...]
    neighbors: int
    family: str

    @property
    def outputs(self) -> tuple[int | str, ...]:
        """Every output in order: main AU numbers, then sub-AU names."""
        return self.main_aus + self.sub_aus

    @property
    def sub_parents(self) -> tuple[int, ...]:
        """For each sub-AU, the index of its main AU among :attr:`main_aus` (``"L4"`` -> index of AU4)."""
        return tuple(self.main_aus.index(int(name[1:])) for name in self.sub_aus)


AU_DETECTOR_VARIANTS: dict[str, AuDetectorVariant] = {
    "opengraphau": AuDetectorVariant("opengraphau", OPENGRAPHAU_MAIN_AUS, OPENGRAPHAU_SUB_AUS, 4, "opengraphau"),
    "megraphau_bp4d": AuDetectorVariant("megraphau_bp4d", MEGRAPHAU_BP4D_AUS, (), 4, "megraphau"),
    "megraphau_disfa": AuDetectorVariant("megraphau_disfa", MEGRAPHAU_DISFA_AUS, (), 3, "megraphau"),
}


@dataclass
class AuDetectorOutput:
    """Output of :class:`MEFARG`.

    Attributes:
        prob: (B, K) per-output cosine scores in [0, 1] (see the module docstring),
            in the order of :attr:`MEFARG.au_names`.
        afg: (B, N, d) AU-specific features f_v from the AFG block (before the graph),
            nodes in the order of :attr:`MEFARG.afg_aus`.
        nodes: (B, N, d) node features after the graph.
        edge_logits: (B, N*N, 4) ME-GraphAU stage-2 AU-relation logits, else ``None``.
    """

    prob: torch.Tensor
    afg: torch.Tensor
    nodes: torch.Tensor
    edge_logits: torch.Tensor | None = None


class MegraphauHead(nn.Module):
    """ME-GraphAU's head (``class_linears``, ``gnn``, ``sc``; MEFL adds ``edge_extractor``, ``edge_fc``)."""

    def __init__(self, channels: int, variant: AuDetectorVariant, graph: str, metric: str = "dots"):
        super().__init__()
        count = len(variant.main_aus)
        self.class_linears = nn.ModuleList(LinearBlock(channels, channels) for _ in range(count))
        self.graph = graph
        if graph == "anfl":
            self.gnn = TopKGraph(channels, count, variant.neighbors, metric)
        else:
            self.edge_extractor = EdgeFeatureExtractor(channels, count)
            self.gnn = PairedGatedGraph(channels, count)
            self.edge_fc = nn.Linear(channels, 4)
            nn.init.xavier_uniform_(self.edge_fc.weight)
        self.sc = nn.Parameter(nn.init.xavier_uniform_(torch.empty(count, channels)))

    def forward(self, tokens: torch.Tensor) -> AuDetectorOutput:
        f_u, f_v = au_features(self.class_linears, tokens)
        edge_logits = None
        if self.graph == "anfl":
            nodes = self.gnn(f_v)
        else:
            nodes, edges = self.gnn(f_v, self.edge_extractor(f_u, tokens))
            edge_logits = self.edge_fc(edges)
        return AuDetectorOutput(prob=cosine_scores(nodes, self.sc), afg=f_v, nodes=nodes, edge_logits=edge_logits)


class OpenGraphAuHead(nn.Module):
    """OpenGraphAU's head (``main_class_linears``, ``gnn``, ``main_sc``, ``sub_sc``; MEFL adds ``edge_extractor``)."""

    def __init__(self, channels: int, variant: AuDetectorVariant, graph: str, metric: str = "dots"):
        super().__init__()
        count = len(variant.main_aus)
        self.main_class_linears = nn.ModuleList(LinearBlock(channels, channels) for _ in range(count))
        self.graph = graph
        if graph == "anfl":
            self.gnn = TopKGraph(channels, count, variant.neighbors, metric)
        else:
            self.edge_extractor = EdgeFeatureExtractor(channels, count)
            self.gnn = StackedGatedGraph(channels, count, layers=2)
        self.main_sc = nn.Parameter(nn.init.xavier_uniform_(torch.empty(count, channels)))
        self.sub_sc = nn.Parameter(nn.init.xavier_uniform_(torch.empty(len(variant.sub_aus), channels)))
        self.register_buffer("sub_parents", torch.tensor(variant.sub_parents, dtype=torch.long), persistent=False)

    def forward(self, tokens: torch.Tensor) -> AuDetectorOutput:
        f_u, f_v = au_features(self.main_class_linears, tokens)
        if self.graph == "anfl":
            nodes = self.gnn(f_v)
        else:
            nodes, _ = self.gnn(f_v, self.edge_extractor(f_u, tokens))
        main = cosine_scores(nodes, self.main_sc)
        sub = cosine_scores(nodes[:, self.sub_parents], self.sub_sc)
        return AuDetectorOutput(prob=torch.cat([main, sub], dim=-1), afg=f_v, nodes=nodes)


class MEFARG(nn.Module):
    """The MEFARG AU detector.

    Args:
        variant: a key of :data:`AU_DETECTOR_VARIANTS`.
        head: ``"anfl"`` (stage 1) or ``"mefl"`` (stage 2).
        backbone: ResNet depth.
        channels: node width d; default D/4 as the reference (512 for ResNet-50).
        metric: ANFL similarity (``"dots"`` in the releases).
    Input: (B, 3, 224, 224) images preprocessed as in :mod:`augane.nets.au_preprocess`.
    """

    def __init__(self, variant: str = "opengraphau", head: str = "anfl", backbone: str = "resnet50",
                 channels: int | None = None, metric: str = "dots"):
        super().__init__()
        if variant not in AU_DETECTOR_VARIANTS:
            raise ValueError(f"unknown AU detector variant {variant!r}; expected one of {sorted(AU_DETECTOR_VARIANTS)}")
        if head not in AU_DETECTOR_HEADS:
            raise ValueError(f"unknown AU detector head {head!r}; expected one of {AU_DETECTOR_HEADS}")
        spec = AU_DETECTOR_VARIANTS[variant]
        feature_dim = resnet_feature_dim(backbone)
        channels = channels or feature_dim // 4
        self.backbone = ResNet(backbone)
        self.global_linear = LinearBlock(feature_dim, channels)
        head_class = OpenGraphAuHead if spec.family == "opengraphau" else MegraphauHead
        self.head = head_class(channels, spec, head, metric)
        self.variant = spec
        self.graph_head = head
        self.backbone_depth = backbone
        self.channels = channels
        self.checkpoint_info: CheckpointInfo | None = None

    @property
    def au_names(self) -> tuple[int | str, ...]:
        """AU of each output (ints for AUs, ``"L1"``-style names for sub-AUs)."""
        return self.variant.outputs

    @property
    def au_labels(self) -> tuple[str, ...]:
        """Column-style label of each output (``AU1``, ``AU_L1``)."""
        return tuple(au_label(au) for au in self.variant.outputs)

    @property
    def afg_aus(self) -> tuple[int, ...]:
        """AU of each AFG node, in node order."""
        return self.variant.main_aus

    def forward(self, images: torch.Tensor) -> AuDetectorOutput:
        tokens = self.backbone(images).tokens()
        return self.head(self.global_linear(tokens))


def detect_layout(state_dict: Mapping[str, torch.Tensor], source: str) -> tuple[str, str, str, int]:
    """(variant family, head, backbone depth, node count) of a MEFARG state dict (``module.`` stripped)."""
    if "head.main_sc" in state_dict:
        family, nodes = "opengraphau", int(state_dict["head.main_sc"].shape[0])
    elif "head.sc" in state_dict:
        family, nodes = "megraphau", int(state_dict["head.sc"].shape[0])
    else:
        raise CheckpointError(
            f"{source} is not a MEFARG checkpoint: it has neither 'head.main_sc' (OpenGraphAU) nor 'head.sc' (ME-GraphAU)"
        )
    head = "mefl" if any(key.startswith("head.edge_extractor.") for key in state_dict) else "anfl"
    try:
        depth = infer_resnet_depth(state_dict, prefix="backbone.")
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from err
    return family, head, depth, nodes


def load_au_detector(path: str | Path, variant: str = "opengraphau", head: str | None = None,
                     backbone: str | None = None, map_location: str | torch.device = "cpu") -> MEFARG:
    """Build a MEFARG detector from a released checkpoint (``{'epoch', 'state_dict', 'optimizer'}``) or a bare state dict.

    Args:
        path: the checkpoint; ``module.`` prefixes are stripped.
        variant: the config's variant; must match the file's key family and AU count.
        head: the config's head (``anfl``/``mefl``); ``None`` accepts the file's.
        backbone: the config's ResNet depth; ``None`` accepts the file's.
        map_location: where tensors are loaded.
    Returns:
        The detector in eval mode, with :attr:`checkpoint_info`.
    Raises:
        CheckpointError: the file's layout differs from the declared one, or any key/shape mismatch.
    """
    path = Path(path)
    if variant not in AU_DETECTOR_VARIANTS:
        raise CheckpointError(f"unknown AU detector variant {variant!r}; expected one of {sorted(AU_DETECTOR_VARIANTS)}")
    spec = AU_DETECTOR_VARIANTS[variant]
    content = read_checkpoint(path, map_location=map_location)
    state = strip_prefix(find_state_dict(content, path))
    family, found_head, depth, nodes = detect_layout(state, str(path))
    if family != spec.family or nodes != len(spec.main_aus):
        names = {"opengraphau": "OpenGraphAU", "megraphau": "ME-GraphAU"}
        raise CheckpointError(
            f"{path} holds a {names[family]} detector with {nodes} AU nodes, but the config's variant {variant!r} "
            f"expects the {names[spec.family]} layout with {len(spec.main_aus)} nodes (AUs {list(spec.main_aus)})"
        )
    if head is not None and head != found_head:
        stage = {"anfl": "stage 1 (ANFL)", "mefl": "stage 2 (MEFL)"}
        raise CheckpointError(
            f"{path} holds the {stage[found_head]} head but the config declares {stage[head]}; set the head to {found_head!r}"
        )
    check_backbone(backbone, depth, str(path))
    linear = state.get("global_linear.fc.weight")
    if linear is None:
        raise CheckpointError(f"{path} lacks global_linear.fc.weight (MEFARG's projection of the backbone tokens)")
    detector = MEFARG(variant, found_head, depth, channels=int(linear.shape[0]))
    report = load_state_dict_strict(detector, state, path, network=f"MEFARG {variant} {found_head} ({depth})")
    ignored = [name for name in content if name != "state_dict"] if isinstance(content, Mapping) else []
    detector.checkpoint_info = checkpoint_info(path, content, report, ignored)
    return detector.eval()
