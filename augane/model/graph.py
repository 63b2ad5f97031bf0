"""Edge lists for GANE's node graph, batched as disjoint copies for torch-geometric.

GANE's graph is small (N AU nodes + 1 global node) and the same for every
sample, so the batched ``edge_index`` of B copies is built once per
``(B, num_nodes, self_loops, device)`` and reused.
"""

from __future__ import annotations

import torch
from torch import Tensor


def fully_connected_edges(num_nodes: int, self_loops: bool = True) -> Tensor:
    """Directed edges of a complete graph on ``num_nodes`` nodes.

    Returns:
        (2, E) int64 ``[source; target]`` with ``E = num_nodes**2`` when
        ``self_loops`` else ``num_nodes * (num_nodes - 1)``.
    """
    if num_nodes < 1:
        raise ValueError(f"a graph needs at least one node, got {num_nodes}")
    source, target = torch.meshgrid(torch.arange(num_nodes), torch.arange(num_nodes), indexing="ij")
    source, target = source.reshape(-1), target.reshape(-1)
    if not self_loops:
        keep = source != target
        source, target = source[keep], target[keep]
    return torch.stack([source, target])


def batched_edges(edges: Tensor, batch_size: int, num_nodes: int) -> Tensor:
    """Repeat one graph's ``edges`` (2, E) for ``batch_size`` disjoint graphs.

    Graph ``b`` uses node ids ``b * num_nodes ... (b + 1) * num_nodes - 1``,
    matching a (B, num_nodes, C) tensor reshaped to (B * num_nodes, C).

    Returns:
        (2, B * E) int64.
    """
    offsets = torch.arange(batch_size, device=edges.device).repeat_interleave(edges.shape[1]) * num_nodes
    return edges.repeat(1, batch_size) + offsets


class EdgeCache:
    """Batched fully connected edge lists, built once per ``(B, num_nodes, device)``.

    Not part of a module's state: it is rebuilt on demand after moving a
    model to another device or unpickling it.
    """

    def __init__(self, self_loops: bool = True) -> None:
        self.self_loops = self_loops
        self._cache: dict[tuple[int, int, str], Tensor] = {}

    def get(self, batch_size: int, num_nodes: int, device: torch.device) -> Tensor:
        """(2, B * E) edge index of ``batch_size`` complete graphs on ``device``."""
        key = (batch_size, num_nodes, str(device))
        edges = self._cache.get(key)
        if edges is None:
            single = fully_connected_edges(num_nodes, self.self_loops).to(device)
            edges = batched_edges(single, batch_size, num_nodes)
            self._cache[key] = edges
        return edges

    def __len__(self) -> int:
        return len(self._cache)
