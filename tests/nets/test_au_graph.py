"""The MEFARG head blocks equal the reference computations, written here the reference's way."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from augane.nets.au_graph import (
    EdgeFeatureExtractor,
    GatedGraphLayer,
    LinearBlock,
    PairedGatedGraph,
    TopKGraph,
    cosine_scores,
)


def _randomise_norms(module: torch.nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            size = norm.num_features
            norm.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            norm.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)


def _pair_matrices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's edge incidence: edge i*n+j has end (target) i and start (source) j."""
    end = torch.zeros(n * n, n)
    for i in range(n):
        end[i * n:(i + 1) * n, i] = 1
    start = torch.eye(n).repeat(n, 1)
    return start, end


def test_linear_block_normalises_channels_of_every_token():
    torch.manual_seed(0)
    block = LinearBlock(6, 4)
    _randomise_norms(block)
    block.eval()
    tokens = torch.randn(2, 5, 6)
    bn = block.bn
    expected = F.relu((block.fc(tokens) - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias)
    torch.testing.assert_close(block(tokens), expected)


def test_topk_graph_matches_the_reference_formula():
    torch.manual_seed(0)
    n, c, k = 6, 8, 3
    graph = TopKGraph(c, n, neighbors=k)
    _randomise_norms(graph)
    graph.eval()
    x = torch.randn(2, n, c)
    si = torch.einsum("bij,bjk->bik", x, x.transpose(1, 2))
    threshold = si.topk(k=k, dim=-1, largest=True)[0][:, :, -1].view(2, n, 1)
    adj = (si >= threshold).float()
    degree_matrix = torch.eye(n).view(1, n, n) * adj.sum(-1).pow(-0.5).view(2, n, 1)
    normalised = torch.bmm(torch.bmm(degree_matrix, adj), degree_matrix)
    aggregate = torch.einsum("bij,bjk->bik", normalised, graph.V(x))
    expected = F.relu(x + graph.bnv(aggregate + graph.U(x)))
    torch.testing.assert_close(graph(x), expected)


def _reference_gated_step(layer_weights, bnv, bne, x, edge, start, end, n, relu_after_residual):
    U, V, A, B, E = layer_weights
    res = x
    edge = edge + F.relu(bne(torch.einsum("ev,bvc->bec", end, A(x)) + torch.einsum("ev,bvc->bec", start, B(x)) + E(edge)))
    e = torch.sigmoid(edge)
    b, _, c = e.shape
    e = torch.softmax(e.view(b, n, n, c), dim=2).view(b, -1, c)
    ujx = torch.einsum("ev,bvc->bec", start, V(x))
    x = U(x) + torch.einsum("ve,bec->bvc", end.t(), e * ujx) / n
    x = F.relu(res + bnv(x)) if relu_after_residual else res + F.relu(bnv(x))
    return x, edge


def test_gated_graph_layers_match_the_reference_formulas():
    torch.manual_seed(0)
    n, c = 5, 8
    start, end = _pair_matrices(n)
    x, edge = torch.randn(2, n, c), torch.randn(2, n * n, c)

    opengraphau = GatedGraphLayer(c, n)
    _randomise_norms(opengraphau)
    opengraphau.eval()
    weights = (opengraphau.U, opengraphau.V, opengraphau.A, opengraphau.B, opengraphau.E)
    expected = _reference_gated_step(weights, opengraphau.bnv, opengraphau.bne, x, edge, start, end, n, False)
    for got, want in zip(opengraphau(x, edge), expected):
        torch.testing.assert_close(got, want)

    megraphau = PairedGatedGraph(c, n)
    _randomise_norms(megraphau, seed=1)
    megraphau.eval()
    first = (megraphau.U1, megraphau.V1, megraphau.A1, megraphau.B1, megraphau.E1)
    second = (megraphau.U2, megraphau.V2, megraphau.A2, megraphau.B2, megraphau.E2)
    nodes, edges = _reference_gated_step(first, megraphau.bnv1, megraphau.bne1, x, edge, start, end, n, True)
    expected = _reference_gated_step(second, megraphau.bnv2, megraphau.bne2, nodes, edges, start, end, n, True)
    for got, want in zip(megraphau(x, edge), expected):
        torch.testing.assert_close(got, want)


def test_edge_features_fast_eval_path_matches_the_reference_computation():
    torch.manual_seed(0)
    b, n, d, c = 2, 4, 6, 8
    gem = EdgeFeatureExtractor(c, n)
    _randomise_norms(gem)
    gem.eval()
    class_feature, global_feature = torch.randn(b, n, d, c), torch.randn(b, d, c)

    def attend(module, y, x):
        dots = module.linear_q(y) @ module.linear_k(x).transpose(-2, -1) * module.scale
        return torch.softmax(dots, dim=-1) @ module.linear_v(x)

    repeated = global_feature.repeat(1, n, 1).view(b, n, d, c)
    feat = attend(gem.FAM, class_feature, repeated)
    feat_end = feat.repeat(1, 1, n, 1).view(b, -1, d, c)
    feat_start = feat.repeat(1, n, 1, 1).view(b, -1, d, c)
    expected = gem.bn(gem.edge_proj(attend(gem.ARM, feat_start, feat_end))).mean(dim=-2)
    torch.testing.assert_close(gem(class_feature, global_feature), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gem.literal(class_feature, global_feature), expected, rtol=1e-4, atol=1e-5)


def test_cosine_scores_of_non_negative_features_lie_in_unit_interval():
    nodes = torch.rand(3, 5, 7)
    vectors = torch.randn(5, 7)
    scores = cosine_scores(nodes, vectors)
    assert scores.shape == (3, 5) and scores.min() >= 0 and scores.max() <= 1 + 1e-6
    expected = F.cosine_similarity(nodes, F.relu(vectors)[None], dim=-1)
    torch.testing.assert_close(scores, expected)
