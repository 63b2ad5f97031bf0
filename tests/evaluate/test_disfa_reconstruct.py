"""The evaluation's reconstruction step on the tiny DISFA-type cache: predictions, ground-truth errors, inputs table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from augane.errors import DataError
from augane.evaluate.disfa_reconstruct import reconstruct_frames
from augane.evaluate.ground_truth import GroundTruth, landmarks_in_source
from augane.evaluate.inputs import input_table
from augane.evaluate.predictions import combine_predictions, input_predictions_from_features, validate_predictions
from augane.flame.camera import pixels_to_normalised
from augane.preprocess.crop import apply_transform
from tests.evaluate.tiny_disfa import FRAMES, NO_FACE, SIZE, SUBJECTS, TRANSFORM
from tests.evaluate.worlds import tiny_disfa  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _inputs(world) -> pd.DataFrame:
    return input_table(pd.read_parquet(world.cache_dir / "index.parquet"),
                       pd.read_parquet(world.cache_dir / "features.parquet"))


@pytest.fixture(scope="module")
def results(tiny_disfa):
    torch.set_num_threads(1)
    frames = _inputs(tiny_disfa)
    return {
        method: reconstruct_frames(tiny_disfa.config, tiny_disfa.cache_dir, frames, method,
                                   checkpoint=tiny_disfa.checkpoint, ground_truth=tiny_disfa.ground_truth,
                                   batch_size=4)
        for method in ("augane", "deca", "emoca")
    }


def test_inputs_table_joins_index_and_features(tiny_disfa):
    table = _inputs(tiny_disfa)
    assert list(table.columns[:7]) == ["sample_id", "subject", "frame", "shard", "row", "status", "status_name"]
    assert len(table) == len(SUBJECTS) * FRAMES
    no_face = table[(table["subject"] == NO_FACE[0]) & (table["frame"] == NO_FACE[1])]
    assert not no_face["valid"].iloc[0] and np.isnan(no_face["prob_AU1"].iloc[0])


def test_inputs_table_refuses_tables_of_different_runs(tiny_disfa):
    index = pd.read_parquet(tiny_disfa.cache_dir / "index.parquet")
    features = pd.read_parquet(tiny_disfa.cache_dir / "features.parquet")
    features.loc[0, "sample_id"] = "SN027#000000"
    with pytest.raises(DataError, match="not in the index"):
        input_table(index, features)
    with pytest.raises(DataError, match=r"lacks \['subject'\]"):
        input_table(index.drop(columns="subject"), features)


def test_every_method_gives_one_row_per_frame_valid_for_the_report(tiny_disfa, results):
    inputs = input_predictions_from_features(_inputs(tiny_disfa))
    tables = [inputs] + [result.predictions for result in results.values()]
    combined = combine_predictions(tables, ["inputs", *results])
    assert set(combined["method"]) == {"input", "augane", "deca", "emoca"}
    for method, result in results.items():
        table = validate_predictions(result.predictions)
        assert len(table) == len(SUBJECTS) * FRAMES
        assert list(table.columns[:4]) == ["subject", "frame", "method", "sample_id"]
        assert table[["subject", "frame"]].values.tolist() == inputs[["subject", "frame"]].values.tolist()
        missing = table[table["prob_AU1"].isna()]
        assert missing[["subject", "frame"]].values.tolist() == [list(NO_FACE)], method
        assert result.provenance["no_face"] == 1 and result.provenance["reconstructed"] == len(table) - 1


def test_emoca_renders_score_like_the_inputs_and_match_the_truth(tiny_disfa, results):
    inputs = input_predictions_from_features(_inputs(tiny_disfa))
    columns = [c for c in inputs.columns if c.startswith("prob_")]
    emoca = results["emoca"].predictions
    np.testing.assert_allclose(emoca[columns].to_numpy(float), inputs[columns].to_numpy(float), atol=0.02)
    errors = results["emoca"].errors.dropna()
    assert len(errors) == len(SUBJECTS) * FRAMES - 1
    assert errors["vertex_error_mm"].max() < 1e-3
    assert errors["landmark_nme"].max() < 1e-4
    assert errors["expression_rmse"].max() < 1e-6


def test_ground_truth_errors_rank_the_methods(results):
    """DECA halves the expression and misses the jaw: its errors are larger than EMOCA's (the truth)."""
    deca, emoca = results["deca"].errors, results["emoca"].errors
    assert deca["vertex_error_mm"].mean() > 0.3
    assert deca["landmark_nme"].mean() > emoca["landmark_nme"].mean()
    assert (deca["expression_rmse"].dropna() > 0.1).all()
    assert list(deca.columns[:4]) == ["subject", "frame", "method", "sample_id"]
    assert deca["vertex_error_mm"].isna().sum() == 1


def test_landmarks_go_back_through_the_inverse_crop_transform():
    source = np.array([[[10.0, 20.0], [40.0, 12.5]]])
    crop = apply_transform(source[0], TRANSFORM)[None]
    back = landmarks_in_source(pixels_to_normalised(crop, SIZE), TRANSFORM[None], SIZE)
    np.testing.assert_allclose(back, source)


def test_missing_ground_truth_frame_is_named(tiny_disfa):
    truth = GroundTruth(tiny_disfa.ground_truth)
    with pytest.raises(DataError, match="no row for frame 99"):
        truth.rows(pd.DataFrame({"subject": ["SN001"], "frame": [99]}))
    with pytest.raises(DataError, match="SN005.parquet does not exist"):
        truth.rows(pd.DataFrame({"subject": ["SN005"], "frame": [0]}))


def test_emoca_is_refused_on_a_cache_without_it(tiny_disfa, tmp_path):
    import shutil

    import zarr

    cache = tmp_path / "cache"
    shutil.copytree(tiny_disfa.cache_dir, cache)
    for store in cache.glob("shard-*/features.zarr"):
        group = zarr.open_group(store, mode="r+")
        del group["emoca_exp"]
        del group["emoca_pose"]
    with pytest.raises(DataError, match="no EMOCA output"):
        reconstruct_frames(tiny_disfa.config, cache, _inputs(tiny_disfa), "emoca")


@pytest.mark.cuda
def test_cuda_reconstruction_agrees_with_cpu(tiny_disfa, results):
    """On CUDA (the detector under bf16 autocast, as the feature stage) the scores stay close to the CPU's."""
    frames = _inputs(tiny_disfa)
    for method in ("augane", "deca"):
        cuda = reconstruct_frames(tiny_disfa.config, tiny_disfa.cache_dir, frames, method,
                                  checkpoint=tiny_disfa.checkpoint, ground_truth=tiny_disfa.ground_truth,
                                  batch_size=4, device="cuda")
        assert cuda.provenance["device"].startswith("cuda")
        columns = [c for c in cuda.predictions.columns if c.startswith("prob_")]
        np.testing.assert_allclose(cuda.predictions[columns].to_numpy(float),
                                   results[method].predictions[columns].to_numpy(float), atol=0.05, equal_nan=True)
        np.testing.assert_allclose(cuda.errors["vertex_error_mm"], results[method].errors["vertex_error_mm"],
                                   rtol=1e-3, atol=1e-3, equal_nan=True)


def test_renders_on_the_face_cover_it_and_match_its_landmarks(results):
    emoca = results["emoca"].predictions.dropna(subset=["prob_AU1"])
    assert emoca["render_coverage"].min() > 0.97
    assert emoca["landmark_nme_input"].max() < 1e-4
    assert results["emoca"].provenance["mean_render_coverage"] > 0.97


def test_a_render_that_misses_the_face_is_flagged(tiny_disfa, caplog, monkeypatch):
    from augane.evaluate.reconstruction import Reconstructor

    original = Reconstructor.parameters

    def shifted(self, batch):
        params = original(self, batch)
        params["cam"] = params["cam"] + torch.tensor([0.0, 0.3, 0.0])  # about 3 crop widths to the right
        return params

    monkeypatch.setattr(Reconstructor, "parameters", shifted)
    result = reconstruct_frames(tiny_disfa.fresh_config(), tiny_disfa.cache_dir, _inputs(tiny_disfa), "deca",
                                batch_size=8)
    assert result.predictions["render_coverage"].max() < 0.05
    assert "does not measure its reconstructions" in caplog.text


def test_render_coverage_of_a_half_covered_face():
    from augane.evaluate.fidelity import render_coverage

    square = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])[None]
    mask = np.zeros((1, 40, 40))
    mask[:, :, :20] = 1.0  # the left half of the crop
    np.testing.assert_allclose(render_coverage(mask, square), [0.5], atol=0.03)
    assert np.isnan(render_coverage(mask, np.full((1, 4, 2), np.nan))[0])
