"""slurm-cluster.sh: a single-node cluster comes up, runs jobs, and never
outlives its test (stop, leftovers of an earlier run, the watchdog), and it
never touches a SLURM it did not start."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster import slurm

pytestmark = pytest.mark.slurm

PORTS = (6817, 6818)


@pytest.fixture
def scratch(cluster_machine) -> Iterator[Path]:
    """A fresh folder under /tmp for clusters of one test; any cluster left in
    it is stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="augane-slurm-test-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    for directory in root.iterdir():
        if (directory / "slurm.conf").exists():
            slurm.stop_cluster(directory)
    shutil.rmtree(root, ignore_errors=True)


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll `condition` every 0.2 s for at most `seconds`; its last value."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def client(directory: Path, *command: str) -> subprocess.CompletedProcess:
    """Run a SLURM client command against the cluster in `directory`."""
    environment = dict(os.environ, SLURM_CONF=str(directory / "slurm.conf"))
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, check=True)


def assert_stopped(directory: Path) -> None:
    assert slurm.cluster_processes(directory) == []
    assert not any(slurm.port_in_use(port) for port in PORTS)


def test_a_job_runs_with_the_requested_gpus_and_stop_leaves_nothing(scratch):
    directory = scratch / "cluster"
    slurm.start_cluster(directory, owner=None, max_seconds=300, gpus=2)
    assert client(directory, "sinfo", "--noheader", "--Node", "--format=%t").stdout.split() == ["idle"]
    job = client(
        directory,
        "sbatch",
        "--parsable",
        "--wait",
        "--gpus=2",
        "--mem=100",
        f"--output={scratch}/job.log",
        "--wrap",
        'echo "$CUDA_VISIBLE_DEVICES $AUGANE_SLURM_CLUSTER"; env -u SLURM_CONF srun -n1 hostname -s',
    ).stdout.strip()
    assert job.isdigit()
    gpus, marker, host = (scratch / "job.log").read_text().split()
    assert gpus == "0,1"
    assert marker == str(directory)
    # srun inside the job reaches this cluster without SLURM_CONF (as in
    # Snakemake's job step, which drops it).
    assert host == socket.gethostname().split(".")[0]
    slurm.stop_cluster(directory)
    assert_stopped(directory)


def test_stop_ends_the_processes_of_running_jobs(scratch):
    directory = scratch / "cluster"
    slurm.start_cluster(directory, owner=None, max_seconds=300, gpus=0)
    client(directory, "sbatch", "--mem=100", "--output=/dev/null", "--wrap", "sleep 600")
    daemons = set(slurm.cluster_processes(directory))

    def job_started() -> bool:
        return len(set(slurm.cluster_processes(directory)) - daemons) >= 2

    assert wait_until(job_started, 30), "the job's processes never appeared"
    slurm.stop_cluster(directory)
    assert_stopped(directory)


def test_the_next_start_stops_a_leftover_cluster(scratch):
    leftover = scratch / "leftover"
    slurm.start_cluster(leftover, owner=None, max_seconds=300, gpus=0)
    assert slurm.cluster_processes(leftover)
    current = scratch / "current"
    slurm.start_cluster(current, owner=None, max_seconds=300, gpus=0)
    assert slurm.cluster_processes(leftover) == []
    assert client(current, "sinfo", "--noheader", "--Node", "--format=%t").stdout.split() == ["idle"]
    slurm.stop_cluster(current)
    assert_stopped(current)


def test_the_watchdog_stops_the_cluster_when_its_owner_exits(scratch):
    directory = scratch / "cluster"
    owner = subprocess.Popen(["sleep", "3"])
    slurm.start_cluster(directory, owner=owner.pid, max_seconds=300, gpus=0)
    assert slurm.cluster_processes(directory)
    owner.wait()
    assert wait_until(lambda: slurm.cluster_processes(directory) == [], 30)
    assert_stopped(directory)


def test_the_watchdog_stops_the_cluster_after_its_time_limit(scratch):
    directory = scratch / "cluster"
    slurm.start_cluster(directory, owner=os.getpid(), max_seconds=3, gpus=0)
    assert wait_until(lambda: slurm.cluster_processes(directory) == [], 30)
    assert_stopped(directory)


def test_start_refuses_ports_taken_by_a_program_it_did_not_start(scratch):
    with socket.socket() as foreign:
        foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        foreign.bind(("127.0.0.1", PORTS[0]))
        foreign.listen()
        with pytest.raises(RuntimeError, match=f"ports {PORTS[0]}"):
            slurm.start_cluster(scratch / "cluster", owner=None, max_seconds=300, gpus=0)
        # Nothing was started, and the foreign listener is untouched.
        assert slurm.cluster_processes(scratch / "cluster") == []
        assert foreign.fileno() >= 0
    assert not slurm.port_in_use(PORTS[0])


@pytest.mark.parametrize("command", ["install", "start"])
def test_without_root_the_script_asks_to_skip(scratch, command):
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", "bash", str(slurm.SCRIPT), command, str(scratch / "cluster")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == slurm.EXIT_SKIP
    assert "needs root" in result.stderr
