"""Building blocks of the MEFARG AU detector's head (ME-GraphAU, Luo et al. 2022; OpenGraphAU).

Attribute names equal the reference implementation's, so the released state
dicts load unchanged. Shapes: B batch, T tokens of the backbone's feature map
(49 at 224 px), C channels of a node (512 for ResNet-50), N AU nodes.

- :class:`LinearBlock`: Linear -> BatchNorm1d -> ReLU applied to every token.
- :func:`au_features`: the AFG block: one LinearBlock per AU, f_u (B, N, T, C),
  and its token mean f_v (B, N, C) -- the AU-specific features.
- :class:`TopKGraph`: the ANFL graph (stage 1): a graph of each node's top-k
  most similar nodes, one GCN step.
- :class:`EdgeFeatureExtractor`: the GEM block (stage 2): cross-attention
  edge features for every ordered node pair.
- :class:`GatedGraphLayer` / :class:`PairedGatedGraph`: the gated GCN of the MEFL
  head in OpenGraphAU's and ME-GraphAU's naming.
- :func:`cosine_scores`: the outputs, cosine similarity of each node with its
  class vector (both non-negative, so in [0, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearBlock(nn.Module):
    """Linear -> BatchNorm1d(out) -> ReLU on (B, T, in) tokens; returns (B, T, out)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)
        nn.init.normal_(self.fc.weight, 0.0, (2.0 / out_features) ** 0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        projected = self.fc(tokens).transpose(1, 2)
        return F.relu(self.bn(projected)).transpose(1, 2)


def au_features(blocks: nn.ModuleList, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The AFG block: per-AU token features and their mean.

    Args:
        blocks: N :class:`LinearBlock` (C -> C), one per AU.
        tokens: (B, T, C) backbone tokens after ``global_linear``.
    Returns:
        ``f_u`` (B, N, T, C) and ``f_v`` (B, N, C) = mean of ``f_u`` over tokens.
    """
    f_u = torch.stack([block(tokens) for block in blocks], dim=1)
    return f_u, f_u.mean(dim=2)


def cosine_scores(nodes: torch.Tensor, class_vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of (B, N, C) node features with (N, C) class vectors (after ReLU), (B, N)."""
    vectors = F.normalize(F.relu(class_vectors), p=2, dim=-1)
    return (F.normalize(nodes, p=2, dim=-1) * vectors).sum(dim=-1)


class TopKGraph(nn.Module):
    """ANFL's graph step: ``x' = ReLU(x + BN(A_norm V(x) + U(x)))``.

    The adjacency links each node to its ``neighbors`` most similar nodes
    (dot product or cosine of detached features; ties included), normalised
    as ``D^-1/2 A D^-1/2`` with row degrees. ``bnv`` normalises per node.
    """

    def __init__(self, channels: int, num_nodes: int, neighbors: int, metric: str = "dots"):
        super().__init__()
        if metric not in {"dots", "cosine"}:
            raise ValueError(f"ANFL similarity metric must be 'dots' or 'cosine', got {metric!r}")
        if not 1 <= neighbors <= num_nodes:
            raise ValueError(f"ANFL needs 1 <= neighbors <= {num_nodes} nodes, got {neighbors}")
        self.U = nn.Linear(channels, channels)
        self.V = nn.Linear(channels, channels)
        self.bnv = nn.BatchNorm1d(num_nodes)
        self.neighbors = neighbors
        self.metric = metric
        for linear in (self.U, self.V):
            nn.init.normal_(linear.weight, 0.0, (2.0 / channels) ** 0.5)

    def adjacency(self, nodes: torch.Tensor) -> torch.Tensor:
        """(B, N, N) normalised top-k adjacency of (B, N, C) node features (no gradient)."""
        with torch.no_grad(), torch.autocast(nodes.device.type, enabled=False):
            features = nodes.detach().float()
            if self.metric == "cosine":
                features = F.normalize(features, p=2, dim=-1)
            similarity = features @ features.transpose(1, 2)
            threshold = similarity.topk(self.neighbors, dim=-1).values[..., -1:]
            adjacency = (similarity >= threshold).float()
            inverse_sqrt = adjacency.sum(dim=-1).rsqrt()
            return inverse_sqrt[:, :, None] * adjacency * inverse_sqrt[:, None, :]

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        adjacency = self.adjacency(nodes).to(nodes.dtype)
        aggregate = adjacency @ self.V(nodes)
        return F.relu(nodes + self.bnv(aggregate + self.U(nodes)))


class CrossAttention(nn.Module):
    """GEM's cross-attention: queries from ``y``, keys and values from ``x`` (C -> C/2 for q, k)."""

    def __init__(self, channels: int):
        super().__init__()
        self.linear_q = nn.Linear(channels, channels // 2)
        self.linear_k = nn.Linear(channels, channels // 2)
        self.linear_v = nn.Linear(channels, channels)
        self.scale = (channels // 2) ** -0.5
        nn.init.normal_(self.linear_q.weight, 0.0, (2.0 / (channels // 2)) ** 0.5)
        nn.init.normal_(self.linear_k.weight, 0.0, (2.0 / (channels // 2)) ** 0.5)
        nn.init.normal_(self.linear_v.weight, 0.0, (2.0 / channels) ** 0.5)

    def weights(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Attention weights (..., Ty, Tx) of queries ``y`` (..., Ty, C) over keys ``x`` (..., Tx, C)."""
        return torch.softmax(self.linear_q(y) @ self.linear_k(x).transpose(-2, -1) * self.scale, dim=-1)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.weights(y, x) @ self.linear_v(x)


class EdgeFeatureExtractor(nn.Module):
    """GEM: a C-dimensional feature for every ordered AU pair, (B, N*N, C).

    For pair ``e = i * N + j``: node ``i``'s and ``j``'s token features are first
    attended against the global tokens (``FAM``), then ``j``'s attend over ``i``'s
    (``ARM``); ``edge_proj`` and a per-pair BatchNorm follow, and the result is
    averaged over tokens. In eval mode the projection and the BatchNorm are
    affine, so the token mean is taken first (the attention weights averaged
    over queries), which avoids the (B, N*N, T, C) tensor of the literal
    computation; in training mode the literal computation runs (its batch
    statistics need every token).
    """

    def __init__(self, channels: int, num_nodes: int):
        super().__init__()
        self.FAM = CrossAttention(channels)
        self.ARM = CrossAttention(channels)
        self.edge_proj = nn.Linear(channels, channels)
        self.bn = nn.BatchNorm2d(num_nodes * num_nodes)
        self.num_nodes = num_nodes
        nn.init.normal_(self.edge_proj.weight, 0.0, (2.0 / channels) ** 0.5)

    def forward(self, f_u: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Edge features from ``f_u`` (B, N, T, C) and the global ``tokens`` (B, T, C); returns (B, N*N, C)."""
        if self.training:
            return self.literal(f_u, tokens)
        batch, nodes, _, channels = f_u.shape
        attended = self.FAM(f_u, tokens[:, None])
        queries = self.ARM.linear_q(attended)
        keys = self.ARM.linear_k(attended)
        values = self.ARM.linear_v(attended)
        # scores[b, i, j, t, s]: query token t of node j against key token s of node i
        scores = torch.einsum("bjtc,bisc->bijts", queries, keys) * self.ARM.scale
        mean_weights = torch.softmax(scores, dim=-1).mean(dim=3)
        pooled = torch.einsum("bijs,bisc->bijc", mean_weights, values).reshape(batch, nodes * nodes, channels)
        projected = self.edge_proj(pooled)
        return _batchnorm_eval(self.bn, projected)

    def literal(self, f_u: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The reference computation, materialising every pair's token features (B, N*N, T, C)."""
        batch, nodes, count, channels = f_u.shape
        attended = self.FAM(f_u, tokens[:, None].expand(batch, nodes, count, channels))
        ends = attended[:, :, None].expand(batch, nodes, nodes, count, channels).reshape(batch, nodes * nodes, count, channels)
        starts = attended[:, None].expand(batch, nodes, nodes, count, channels).reshape(batch, nodes * nodes, count, channels)
        paired = self.ARM(starts, ends)
        return self.bn(self.edge_proj(paired)).mean(dim=2)


def _batchnorm_eval(norm: nn.BatchNorm2d | nn.BatchNorm1d, values: torch.Tensor) -> torch.Tensor:
    """Apply an eval-mode BatchNorm over dim 1 of (B, K, C) values (K = the norm's channels)."""
    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    return values * scale[None, :, None] + shift[None, :, None]


def gated_graph_step(
    nodes: torch.Tensor,
    edges: torch.Tensor,
    linears: tuple[nn.Linear, nn.Linear, nn.Linear, nn.Linear, nn.Linear],
    node_norm: nn.BatchNorm1d,
    edge_norm: nn.BatchNorm1d,
    activation_after_residual: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the gated GCN with edge features (Bresson & Laurent 2017, as in MEFL).

    Args:
        nodes: (B, N, C) node features.
        edges: (B, N*N, C) edge features, pair ``e = i * N + j`` (target ``i``, source ``j``).
        linears: ``(U, V, A, B, E)`` of the layer.
        node_norm: BatchNorm1d(N); edge_norm: BatchNorm1d(N*N).
        activation_after_residual: ME-GraphAU applies ReLU after adding the
            residual; OpenGraphAU adds the residual after the ReLU.
    Returns:
        Updated ``(nodes, edges)``, same shapes.
    """
    U, V, A, B, E = linears
    batch, count, channels = nodes.shape
    targets = A(nodes)[:, :, None, :]
    sources = B(nodes)[:, None, :, :]
    gate_input = (targets + sources).reshape(batch, count * count, channels) + E(edges)
    edges = edges + F.relu(edge_norm(gate_input))
    gates = torch.softmax(torch.sigmoid(edges).reshape(batch, count, count, channels), dim=2)
    messages = (gates * V(nodes)[:, None, :, :]).sum(dim=2) / count
    update = node_norm(U(nodes) + messages)
    if activation_after_residual:
        return F.relu(nodes + update), edges
    return nodes + F.relu(update), edges


def _gated_linears(channels: int, scale: float) -> list[nn.Linear]:
    linears = [nn.Linear(channels, channels, bias=False) for _ in range(5)]
    for linear in linears:
        nn.init.normal_(linear.weight, 0.0, scale)
    return linears


class GatedGraphLayer(nn.Module):
    """One OpenGraphAU MEFL layer (``U, V, A, B, E, bnv, bne``); residual added after the ReLU."""

    def __init__(self, channels: int, num_nodes: int):
        super().__init__()
        self.U, self.V, self.A, self.B, self.E = _gated_linears(channels, (2.0 / channels) ** 0.5)
        self.bnv = nn.BatchNorm1d(num_nodes)
        self.bne = nn.BatchNorm1d(num_nodes * num_nodes)

    def forward(self, nodes: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gated_graph_step(nodes, edges, (self.U, self.V, self.A, self.B, self.E), self.bnv, self.bne, False)


class StackedGatedGraph(nn.Module):
    """OpenGraphAU's MEFL graph: ``graph_layers`` of :class:`GatedGraphLayer` (two in the release)."""

    def __init__(self, channels: int, num_nodes: int, layers: int = 2):
        super().__init__()
        self.graph_layers = nn.ModuleList(GatedGraphLayer(channels, num_nodes) for _ in range(layers))

    def forward(self, nodes: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.graph_layers:
            nodes, edges = layer(nodes, edges)
        return nodes, edges


class PairedGatedGraph(nn.Module):
    """ME-GraphAU's MEFL graph: two gated layers named ``U1 .. E1, bnv1, bne1`` and ``U2 .. E2, bnv2, bne2``."""

    def __init__(self, channels: int, num_nodes: int):
        super().__init__()
        scale = (2.0 / channels) ** 0.5
        self.U1, self.V1, self.A1, self.B1, self.E1 = _gated_linears(channels, scale)
        self.U2, self.V2, self.A2, self.B2, self.E2 = _gated_linears(channels, scale)
        self.bnv1 = nn.BatchNorm1d(num_nodes)
        self.bne1 = nn.BatchNorm1d(num_nodes * num_nodes)
        self.bnv2 = nn.BatchNorm1d(num_nodes)
        self.bne2 = nn.BatchNorm1d(num_nodes * num_nodes)

    def forward(self, nodes: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = (self.U1, self.V1, self.A1, self.B1, self.E1)
        second = (self.U2, self.V2, self.A2, self.B2, self.E2)
        nodes, edges = gated_graph_step(nodes, edges, first, self.bnv1, self.bne1, True)
        return gated_graph_step(nodes, edges, second, self.bnv2, self.bne2, True)
