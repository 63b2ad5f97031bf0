"""Random draws of the demo world: AU statistics and rules, trajectories, poses, lights, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from augane.demo.face_model import DEMO_AUS
from augane.demo.world_sampling import (
    AU_PROTOTYPES,
    apply_au_rules,
    au_trajectory,
    head_motion,
    head_rotation,
    sample_aus,
    sample_light,
    sample_rng,
)
from augane.demo.world_settings import AuSampling, FaceVariation
from augane.render.shading import sh_shading

POSITION = {au: i for i, au in enumerate(DEMO_AUS)}


def _many(count=3000, settings=AuSampling()):
    return np.stack([sample_aus(sample_rng(0, "train", i, 1), settings) for i in range(count)])


def test_draws_are_reproducible_and_independent_of_order():
    first = [sample_aus(sample_rng(5, "train", i, 2), AuSampling()) for i in range(20)]
    again = [sample_aus(sample_rng(5, "train", i, 2), AuSampling()) for i in reversed(range(20))][::-1]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    other_part = [sample_aus(sample_rng(5, "heldout", i, 2), AuSampling()) for i in range(20)]
    assert not np.array_equal(np.stack(first), np.stack(other_part))


def test_aus_are_sparse_integer_and_in_range():
    values = _many()
    assert values.shape[1] == len(DEMO_AUS)
    assert np.all((values >= 0) & (values <= 5)) and np.all(values == np.round(values))
    active = (values > 0).sum(axis=1)
    assert 0.1 < np.mean(active == 0) < 0.2  # neutral_fraction 0.15
    assert 1.5 < active[active > 0].mean() < 5  # sparse, a few AUs at a time
    assert np.all((values > 0).mean(axis=0) > 0.03)  # every AU occurs


@pytest.mark.parametrize("name", sorted(AU_PROTOTYPES))
def test_prototype_members_co_occur(name):
    values = _many() > 0
    first, second = (POSITION[au] for au in AU_PROTOTYPES[name][0][:2])
    with_first = values[values[:, first], second].mean()
    without_first = values[~values[:, first], second].mean()
    assert with_first > 2.5 * without_first


def test_consistency_rules():
    values = _many()
    assert np.all(values[:, POSITION[25]] >= values[:, POSITION[26]])
    pulled = (values[:, POSITION[12]] > 0) | (values[:, POSITION[20]] > 0)
    assert np.all(values[pulled, POSITION[18]] == 0)
    forced = np.zeros(len(DEMO_AUS))
    forced[[POSITION[26], POSITION[18], POSITION[12]]] = [4, 3, 2]
    fixed = apply_au_rules(forced)
    assert fixed[POSITION[25]] == 4 and fixed[POSITION[18]] == 0 and forced[POSITION[18]] == 3


def test_trajectories_are_smooth_episodes():
    rng = sample_rng(1, "disfa", 0, 0)
    values = au_trajectory(rng, frames=500, fps=25.0, settings=AuSampling())
    assert values.shape == (500, len(DEMO_AUS))
    assert values.min() >= 0 and values.max() <= 5
    assert (values > 0).any(axis=1).mean() > 0.3 and (values == 0).all(axis=1).mean() > 0.05  # episodes and gaps
    assert np.abs(np.diff(values, axis=0)).max() < 1.0  # no jumps between frames (onsets of 0.3 s or more)
    assert np.all(values[:, POSITION[25]] >= values[:, POSITION[26]] - 1e-12)


def test_head_rotation_follows_yaw_pitch_roll():
    np.testing.assert_allclose(head_rotation(0, 0, 0), 0)
    yaw = Rotation.from_rotvec(head_rotation(20, 0, 0))
    nose = yaw.apply([0.0, 0.0, 1.0])
    assert nose[0] > 0.3 and abs(nose[1]) < 1e-9  # turned about the vertical axis
    angles = head_motion(sample_rng(0, "disfa", 0, 0), 250, 25.0, FaceVariation())
    assert angles.shape == (250, 3) and np.abs(np.diff(angles, axis=0)).max() < 1.0  # < 25 degrees per second
    assert np.abs(angles[:, 0]).max() <= FaceVariation().yaw_deg


def test_light_is_frontal_and_positive_on_the_face():
    lights = np.stack([sample_light(sample_rng(0, "train", i, 1), FaceVariation()) for i in range(200)])
    normals = torch.tensor([[[0.0, 0.0, 1.0], [0.6, 0.0, 0.8], [-0.6, 0.0, 0.8], [0.0, 0.6, 0.8]]]).repeat(200, 1, 1)
    shading = sh_shading(normals, torch.tensor(lights, dtype=torch.float32)).numpy()
    assert shading.min() > 0.2 and shading.max() < 1.6
    frontal = shading[:, 0].mean()
    assert 0.65 < frontal < 1.3
