"""The SLURM profile runs the workflow for real: a tiny config goes through
`snakemake --profile profiles/slurm --profile tests/profiles/slurm-local` on
a live single-node cluster, and

- every job of the workflow ran inside a SLURM job submitted with sbatch,
  none on the submitting host;
- the profile's groups packed the shard jobs into fewer submissions, and
  each job ran exactly once;
- the rules that use a GPU asked SLURM for GPUs (`sbatch --gpus`), the
  others did not;
- the cached data equal those of a plain local run of the same config;
- a job that fails is reported failed by SLURM and resubmitted (`retries`).

- the train job asked SLURM for the overlay's two GPUs and trained GANE with
  `torchrun --nproc-per-node 2` (gloo on CPU), equal within float tolerance
  to the local run's single process.

The SLURM run also carries `cluster_test_flaky` (cluster-test.smk), a rule
that fails on its first attempt.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
import zarr

from augane.train.checkpoint import read_gane_checkpoint
from tests.cluster import slurm
from tests.cluster.tiny_config import REPO, SNAKEFILE, TARGETS, tiny_workdir
from tests.train.predictions import movement_from_deca, predict_with_checkpoints

pytestmark = pytest.mark.slurm

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
PROFILES = ["--profile", str(PROFILE.parent), "--profile", str(REPO / "tests" / "profiles" / "slurm-local")]
FLAKY_OUTPUT = "results/cluster-test/flaky.txt"
RUN_SECONDS = 900
# Store attributes (dotted paths) that measure the run rather than describe
# the data.
TIMING_ATTRIBUTES = (
    "seconds",
    "runtime.seconds",
    "runtime.read",
    "runtime.compute",
    "runtime.read_fraction",
    "runtime.images_per_second",
)


class Runs:
    """The same tiny config run twice: locally, and through SLURM."""

    def __init__(self, local: slurm.SnakemakeRun, cluster: slurm.SnakemakeRun, slurm_cluster: slurm.SlurmCluster):
        self.local = local
        self.cluster = cluster
        # What SLURM says of each submission, read before it forgets them.
        self.states = slurm_cluster.job_states()
        self.details = {job_id: slurm_cluster.job_details(job_id) for job_id in cluster.submissions()}


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory) -> Runs:
    """Run the tiny config through SLURM and, meanwhile, locally."""
    cluster_dir = tiny_workdir(tmp_path_factory.mktemp("slurm-run"))
    local_dir = tiny_workdir(tmp_path_factory.mktemp("local-run"))
    arguments = ["--snakefile", str(SNAKEFILE), *PROFILES, *TARGETS, FLAKY_OUTPUT]
    results = {}

    def run_through_slurm() -> None:
        results["cluster"] = slurm.run_snakemake(arguments, cluster_dir, slurm_cluster.environment(), RUN_SECONDS)

    thread = threading.Thread(target=run_through_slurm)
    thread.start()
    local = slurm.run_snakemake(["--snakefile", str(SNAKEFILE), "--cores", "all", *TARGETS], local_dir, None, RUN_SECONDS)
    thread.join()
    cluster = results["cluster"]
    print(
        f"\nSLURM setup {slurm_cluster.start_seconds:.1f} s; tiny config locally {local.seconds:.0f} s, "
        f"through SLURM {cluster.seconds:.0f} s (runs overlapped) with {len(cluster.submissions())} sbatch submissions"
    )
    return Runs(local.check(), cluster.check(), slurm_cluster)


def test_every_job_ran_in_a_slurm_job(runs):
    expected = runs.local.local_executions()
    assert expected, "the local run executed no job"
    assert {rule for rule, _ in expected} >= {"preprocess_shard", "features_shard"}
    assert runs.cluster.local_executions() == set(), "jobs ran on the submitting host"
    in_slurm = {}
    for job_id, log in runs.cluster.slurm_logs().items():
        for job in slurm.executions(log):
            in_slurm.setdefault(job, []).append(job_id)
    assert set(in_slurm) == expected | {("cluster_test_flaky", FLAKY_OUTPUT)}
    for job, job_ids in in_slurm.items():
        # Each ran once (the flaky rule: once per attempt), in SLURM jobs that
        # the controller knows, the last one completed.
        assert len(job_ids) == (2 if job[0] == "cluster_test_flaky" else 1), (job, job_ids)
        assert runs.states.get(job_ids[-1]) == "COMPLETED", (job, job_ids, runs.states)


def test_shard_jobs_are_packed_into_groups(runs):
    profile = yaml.safe_load(PROFILE.read_text())
    for rule, group in profile["groups"].items():
        limit = profile["group-components"][group]
        shards = sum(rule == name for name, _ in runs.local.local_executions())
        packs = [
            sum(rule == name for name, _ in slurm.executions(log)) for log in runs.cluster.slurm_logs().values()
        ]
        packs = [size for size in packs if size]
        assert sum(packs) == shards
        assert max(packs) <= limit
        # Fewer submissions than jobs; as few as the group size allows, give
        # or take jobs that became ready at different times.
        assert math.ceil(shards / limit) <= len(packs) < shards or shards == 1, (rule, packs)


def test_gpu_jobs_ask_slurm_for_gpus(runs):
    for job_id, log in runs.cluster.slurm_logs().items():
        rules = {rule for rule, _ in slurm.executions(log)}
        requested = runs.details[job_id].get("TresPerJob", "")
        if "features_shard" in rules:
            # One GPU per shard, at most the node's two side by side.
            shards = sum(rule == "features_shard" for rule, _ in slurm.executions(log))
            assert requested == f"gres:gpu:{min(shards, 2)}", (job_id, rules, requested)
        elif "train" in rules:
            assert requested == "gres:gpu:2", (job_id, rules, requested)
        else:
            assert "gpu" not in requested, (job_id, rules, requested)


def test_a_failed_job_is_reported_and_resubmitted(runs):
    logs = runs.cluster.slurm_logs()
    flaky = [job_id for job_id, log in logs.items() if ("cluster_test_flaky", FLAKY_OUTPUT) in slurm.executions(log)]
    assert len(flaky) == 2, flaky
    first, second = flaky
    assert runs.states[first] == "FAILED"
    assert runs.states[second] == "COMPLETED"
    assert f"SLURM-job '{first}' failed, SLURM status is: 'FAILED'" in runs.cluster.output
    assert "Trying to restart job" in runs.cluster.output
    assert (runs.cluster.directory / FLAKY_OUTPUT).read_text().strip() == "2"
    # Snakemake showed the failed attempt's log (profile: show-failed-logs)
    # and cleared it for the retry, whose own log it kept.
    assert f"attempt 1 in SLURM job {first}\nfailing on purpose" in runs.cluster.output
    log = runs.cluster.directory / "results/logs/cluster-test/flaky.log"
    assert log.read_text() == f"attempt 2 in SLURM job {second}\n"


# Snakemake marks directory outputs with a hidden file that Zarr notices.
@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp:UserWarning")
def test_cached_data_equal_those_of_a_local_run(runs):
    local = runs.local.directory / "results" / "cache"
    cluster = runs.cluster.directory / "results" / "cache"
    assert sorted(files(cluster)) == sorted(files(local))
    stores = [path for path in files(local) if path.suffix == ".zarr"]
    tables = [path for path in files(local) if path.suffix == ".parquet"]
    assert {path.name for path in stores} == {"preprocess.zarr", "features.zarr"}
    assert {"manifest.parquet", "index.parquet", "features.parquet"} <= {path.name for path in tables}
    for path in tables:
        pd.testing.assert_frame_equal(
            pd.read_parquet(cluster / path), pd.read_parquet(local / path), check_exact=False, rtol=1e-5, atol=1e-6
        )
    for path in stores:
        assert_same_store(cluster / path, local / path)


def files(root: Path) -> list[Path]:
    """Paths under `root`, relative to it, with Zarr stores as single entries
    (Snakemake's hidden timestamp files left out)."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if any(part.endswith(".zarr") for part in relative.parts[:-1]):
            continue
        if path.is_file() or path.suffix == ".zarr":
            found.append(relative)
    return found


def without(attributes: dict, paths: tuple[str, ...]) -> dict:
    """`attributes` without the entries at the dotted `paths`."""
    result = dict(attributes)
    for path in paths:
        *parents, key = path.split(".")
        node = result
        for parent in parents:
            if not isinstance(node.get(parent), dict):
                break
            node[parent] = node = dict(node[parent])
        else:
            node.pop(key, None)
    return result


def assert_same_store(actual: Path, expected: Path) -> None:
    """Same arrays (names, dtypes, shapes; integers equal, floats within
    tolerance, NaN where NaN) and the same attributes except timings."""
    a, b = zarr.open_group(actual, mode="r"), zarr.open_group(expected, mode="r")
    assert without(a.attrs.asdict(), TIMING_ATTRIBUTES) == without(b.attrs.asdict(), TIMING_ATTRIBUTES), actual
    assert sorted(a.array_keys()) == sorted(b.array_keys()), actual
    for name in a.array_keys():
        x, y = a[name][...], b[name][...]
        assert (x.dtype, x.shape) == (y.dtype, y.shape), f"{actual}/{name}"
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, equal_nan=True, err_msg=f"{actual}/{name}")
        else:
            np.testing.assert_array_equal(x, y, err_msg=f"{actual}/{name}")


def test_training_on_two_slurm_ranks_equals_one_local_process(runs):
    run = Path("results/train/cluster-test")
    local, cluster = runs.local.directory, runs.cluster.directory
    one = read_gane_checkpoint(local / run / "checkpoints" / "last.pt")
    two = read_gane_checkpoint(cluster / run / "checkpoints" / "last.pt")
    assert one["training"]["world_size"] == 1 and two["training"]["world_size"] == 2
    assert two["training"]["step"] == one["training"]["step"] == 4
    # The same global batches from the same initial weights: the first steps' losses equal to float precision.
    # Later steps drift apart slightly: Adam turns rounding differences of the all-reduced gradients into
    # steps of up to lr, and a hard-edged render is discontinuous in the vertex positions (the exact
    # equivalence on continuous losses is tests/train/test_distributed.py's).
    steps_one = pd.read_csv(local / run / "train_steps.csv")
    steps_two = pd.read_csv(cluster / run / "train_steps.csv")
    assert steps_two["samples"].tolist() == steps_one["samples"].tolist()
    np.testing.assert_allclose(steps_two["loss"][:2], steps_one["loss"][:2], rtol=1e-4)
    np.testing.assert_allclose(steps_two["loss"], steps_one["loss"], rtol=1e-2)
    # Trained alike: both moved away from DECA's estimate, far more than they differ from each other.
    config = json.loads((local / "results" / "config" / "config.json").read_text())
    batch, (ours, theirs) = predict_with_checkpoints(
        config, local / "results" / "cache", [root / run / "checkpoints" / "last.pt" for root in (local, cluster)])
    for name in ("exp", "pose", "cam"):
        moved = movement_from_deca(batch, ours, name)
        assert moved > 1e-3, name
        assert (theirs[name] - ours[name]).abs().max().item() < 0.25 * moved, name
