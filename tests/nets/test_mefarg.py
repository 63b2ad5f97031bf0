"""The MEFARG detector loads every released ME-GraphAU / OpenGraphAU layout strictly and outputs named AU scores."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from augane.aus import OPENGRAPHAU_MAIN_AUS
from augane.errors import CheckpointError
from augane.nets.mefarg import MEFARG, load_au_detector
from tests.nets.reference_layouts import mefarg, random_tensors

LAYOUTS = [
    ("opengraphau", "opengraphau", 27, "anfl"),
    ("opengraphau", "opengraphau", 27, "mefl"),
    ("megraphau_bp4d", "megraphau", 12, "anfl"),
    ("megraphau_bp4d", "megraphau", 12, "mefl"),
    ("megraphau_disfa", "megraphau", 8, "anfl"),
    ("megraphau_disfa", "megraphau", 8, "mefl"),
]


def _release_file(path, family, nodes, head, depth, data_parallel=False, seed=0):
    """A checkpoint as the reference training scripts save it: {'epoch', 'state_dict', 'optimizer'}."""
    state = random_tensors(mefarg(family, nodes, head, depth), seed)
    if data_parallel:
        state = {f"module.{key}": value for key, value in state.items()}
    torch.save({"epoch": 19, "state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5}]}}, path)
    return state


@pytest.mark.parametrize(("variant", "family", "nodes", "head"), LAYOUTS)
def test_released_resnet50_layouts_load_strictly(tmp_path, variant, family, nodes, head):
    path = tmp_path / "release.pth"
    state = _release_file(path, family, nodes, head, "resnet50", data_parallel=head == "mefl")
    detector = load_au_detector(path, variant, head=head, backbone="resnet50")
    assert detector.channels == 512 and detector.graph_head == head and not detector.training
    assert detector.checkpoint_info.ignored_entries == ["epoch", "optimizer"]
    loaded = detector.state_dict()
    assert len(loaded) == len(state)
    for key in ("head.gnn.bnv.running_var" if head == "anfl" else "head.edge_extractor.bn.weight", "global_linear.fc.weight"):
        torch.testing.assert_close(loaded[key], state[f"module.{key}" if head == "mefl" else key])


def test_bare_state_dict_and_au_names(tmp_path):
    state = random_tensors(mefarg("opengraphau", 27, "anfl", "resnet18"))
    torch.save(state, tmp_path / "bare.pth")
    detector = load_au_detector(tmp_path / "bare.pth")
    assert detector.channels == 128 and detector.backbone_depth == "resnet18"
    assert detector.afg_aus == OPENGRAPHAU_MAIN_AUS
    assert len(detector.au_names) == 41 and detector.au_names[27:29] == ("L1", "R1")
    assert detector.au_labels[:2] == ("AU1", "AU2") and detector.au_labels[-1] == "AU_R14"


@pytest.mark.parametrize(("variant", "head"), [("opengraphau", "anfl"), ("opengraphau", "mefl"), ("megraphau_disfa", "mefl")])
def test_outputs_are_bounded_deterministic_and_batch_independent(tmp_path, variant, head):
    torch.manual_seed(0)
    detector = MEFARG(variant, head, "resnet18").eval()
    images = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        full = detector(images)
        again = detector(images)
        part = detector(images[2:])
    outputs = len(detector.au_names)
    assert full.prob.shape == (4, outputs) and full.afg.shape == (4, len(detector.afg_aus), 128)
    assert full.prob.min() >= 0 and full.prob.max() <= 1 + 1e-6
    torch.testing.assert_close(full.prob, again.prob, rtol=0, atol=0)
    torch.testing.assert_close(full.prob[2:], part.prob, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(full.afg[2:], part.afg, rtol=1e-4, atol=1e-5)
    if variant.startswith("megraphau") and head == "mefl":
        assert full.edge_logits.shape == (4, 64, 4)


def test_sub_au_scores_compare_the_parent_node_with_their_class_vector():
    torch.manual_seed(0)
    detector = MEFARG("opengraphau", "anfl", "resnet18").eval()
    with torch.no_grad():
        out = detector(torch.randn(2, 3, 64, 64))
    head = detector.head
    for k, name in enumerate(detector.au_names[27:]):
        parent = OPENGRAPHAU_MAIN_AUS.index(int(name[1:]))
        expected = F.cosine_similarity(out.nodes[:, parent], F.relu(head.sub_sc[k])[None], dim=-1)
        torch.testing.assert_close(out.prob[:, 27 + k], expected)


def test_renamed_or_reshaped_key_is_named(tmp_path):
    state = random_tensors(mefarg("megraphau", 12, "mefl", "resnet18"))
    state["head.gnn.U3.weight"] = state.pop("head.gnn.U2.weight")
    torch.save({"state_dict": state}, tmp_path / "renamed.pth")
    with pytest.raises(CheckpointError, match=r"1 missing: head\.gnn\.U2\.weight\n  1 unexpected: head\.gnn\.U3\.weight"):
        load_au_detector(tmp_path / "renamed.pth", "megraphau_bp4d")
    state = random_tensors(mefarg("opengraphau", 27, "anfl", "resnet18"))
    state["head.sub_sc"] = torch.zeros(12, 128)
    torch.save({"state_dict": state}, tmp_path / "reshaped.pth")
    with pytest.raises(CheckpointError, match=r"head\.sub_sc \(file \(12, 128\), network \(14, 128\)\)"):
        load_au_detector(tmp_path / "reshaped.pth")


def test_declared_layout_must_match_the_file(tmp_path):
    _release_file(tmp_path / "stage2.pth", "opengraphau", 27, "mefl", "resnet18")
    with pytest.raises(CheckpointError, match=r"holds the stage 2 \(MEFL\) head but the config declares stage 1 \(ANFL\)"):
        load_au_detector(tmp_path / "stage2.pth", "opengraphau", head="anfl")
    with pytest.raises(CheckpointError, match="resnet18 trunk but the config declares resnet50"):
        load_au_detector(tmp_path / "stage2.pth", "opengraphau", backbone="resnet50")
    _release_file(tmp_path / "bp4d.pth", "megraphau", 12, "anfl", "resnet18")
    with pytest.raises(CheckpointError, match=r"ME-GraphAU detector with 12 AU nodes.*'megraphau_disfa'.*8 nodes"):
        load_au_detector(tmp_path / "bp4d.pth", "megraphau_disfa")
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a MEFARG checkpoint"):
        load_au_detector(tmp_path / "other.pth")


def test_stand_in_trains_through_the_literal_edge_path():
    torch.manual_seed(0)
    detector = MEFARG("opengraphau", "mefl", "resnet18", channels=32).train()
    out = detector(torch.randn(2, 3, 64, 64))
    out.prob.sum().backward()
    assert detector.head.edge_extractor.ARM.linear_q.weight.grad.abs().sum() > 0
