"""profiles/slurm and its test overlay, without a cluster: Snakemake accepts
every key (a misspelt key or plugin setting is an error), every rule they
name exists (Snakemake silently ignores settings for unknown rules, so a
renamed rule would quietly lose its partition or its packing), and every
rule that declares a GPU is sent to a GPU partition as one task."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.cluster import slurm
from tests.cluster.tiny_config import REPO, tiny_workdir

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
OVERLAY = REPO / "tests" / "profiles" / "slurm-local" / "config.yaml"


@pytest.fixture(scope="module")
def workflow_rules(tmp_path_factory) -> set[str]:
    run = slurm.run_snakemake(
        ["--snakefile", str(REPO / "Snakefile"), "--list-rules"],
        tiny_workdir(tmp_path_factory.mktemp("rules")),
        timeout=120,
    ).check()
    return set(re.findall(r"^(\w+)$", run.output, re.MULTILINE))


@pytest.mark.parametrize("path", [PROFILE, OVERLAY], ids=["slurm", "slurm-local"])
def test_profiles_name_only_rules_of_the_workflow(path, workflow_rules):
    profile = yaml.safe_load(path.read_text())
    named = set(profile.get("set-resources", {})) | set(profile.get("groups", {})) | set(profile.get("set-threads", {}))
    assert named, path
    assert named <= workflow_rules, f"{path} names rules the workflow lacks: {sorted(named - workflow_rules)}"


def test_every_group_has_a_size():
    profile = yaml.safe_load(PROFILE.read_text())
    assert set(profile["groups"].values()) == set(profile["group-components"])


@pytest.mark.parametrize(
    "profiles",
    [[PROFILE.parent], [PROFILE.parent, OVERLAY.parent]],
    ids=["slurm", "slurm+slurm-local"],
)
def test_snakemake_accepts_the_profiles(profiles, tmp_path):
    arguments = ["--snakefile", str(REPO / "Snakefile"), "--dry-run"]
    for profile in profiles:
        arguments += ["--profile", str(profile)]
    run = slurm.run_snakemake([*arguments, "preprocess"], tiny_workdir(tmp_path), timeout=120).check()
    assert "This was a dry-run" in run.output


def gpu_rules() -> set[str]:
    """Rules of the workflow whose resources declare `gpu`."""
    found = set()
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^(?=(?:rule|checkpoint) )", path.read_text(), flags=re.MULTILINE):
            name = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if name and re.search(r"^\s+gpu=", block, re.MULTILINE):
                found.add(name[1])
    return found


@pytest.mark.parametrize("path", [PROFILE, OVERLAY], ids=["slurm", "slurm-local"])
def test_every_gpu_rule_has_its_partition_and_one_task(path):
    settings = yaml.safe_load(path.read_text())["set-resources"]
    rules = gpu_rules()
    assert "features_shard" in rules
    for rule in rules:
        assert "slurm_partition" in settings.get(rule, {}), f"{path}: no GPU partition for {rule}"
        assert settings[rule].get("tasks_per_gpu") == 0, f"{path}: {rule} would get one task per GPU"
