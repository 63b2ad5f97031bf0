"""Fixtures of the SLURM tests: the machine prepared for a test cluster, and
one running cluster per test module."""

from __future__ import annotations

import pytest

from tests.cluster import slurm

# Longest wait for a test cluster of another test session on this machine.
LOCK_WAIT_SECONDS = 900


@pytest.fixture(scope="session")
def cluster_machine() -> float:
    """SLURM and munge installed, and this session alone in starting test
    clusters on this machine (the SLURM ports are fixed). Returns the seconds
    the installation took (0 when the packages were there)."""
    try:
        seconds = slurm.install()
    except slurm.ClusterUnavailable as error:
        pytest.skip(f"this machine cannot run a SLURM test cluster: {error}")
    with slurm.machine_lock(LOCK_WAIT_SECONDS):
        yield seconds


@pytest.fixture(scope="module")
def slurm_cluster(cluster_machine) -> slurm.SlurmCluster:
    """A single-node SLURM cluster on localhost with 2 fake GPUs, stopped
    after the module's tests (and by its watchdog if this process dies)."""
    with slurm.single_node_cluster(gpus=2) as cluster:
        yield cluster
