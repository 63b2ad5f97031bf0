"""Batched fully connected edge lists for GANE's GAT."""

from __future__ import annotations

import torch

from augane.model.graph import EdgeCache, batched_edges, fully_connected_edges


def test_complete_graph_with_and_without_self_loops():
    edges = fully_connected_edges(3)
    assert edges.shape == (2, 9)
    assert set(map(tuple, edges.T.tolist())) == {(i, j) for i in range(3) for j in range(3)}
    no_loops = fully_connected_edges(3, self_loops=False)
    assert set(map(tuple, no_loops.T.tolist())) == {(i, j) for i in range(3) for j in range(3) if i != j}


def test_batched_copies_are_disjoint():
    edges = batched_edges(fully_connected_edges(2), batch_size=3, num_nodes=2)
    assert edges.shape == (2, 12)
    for b in range(3):
        block = edges[:, 4 * b : 4 * (b + 1)]
        assert block.min() == 2 * b and block.max() == 2 * b + 1


def test_cache_builds_once_per_batch_size():
    cache = EdgeCache()
    first = cache.get(4, 28, torch.device("cpu"))
    assert cache.get(4, 28, torch.device("cpu")) is first
    assert first.shape == (2, 4 * 28 * 28)
    cache.get(3, 28, torch.device("cpu"))
    assert len(cache) == 2
