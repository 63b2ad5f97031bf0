"""Drive a throw-away single-node SLURM cluster and Snakemake runs from Python.

The cluster itself is `slurm-cluster.sh` (install, start, stop); this module
adds what a test or a benchmark needs around it: a machine-wide lock so that
two runs never share the fixed SLURM ports, a context manager that always
stops the cluster, Snakemake runs bounded in time, and the facts a test
asserts, read from Snakemake's and SLURM's own logs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("slurm-cluster.sh")
REGISTRY = Path(os.environ.get("AUGANE_SLURM_REGISTRY", "/run/augane-slurm-cluster"))
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
EXIT_SKIP = 77


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the test cluster (not root, or no apt-get)."""


def install() -> float:
    """Install the SLURM and munge Debian packages when missing.

    Returns the seconds it took. Raises ClusterUnavailable where this machine
    cannot run a test cluster (not root; packages missing and no apt-get),
    CalledProcessError when apt-get failed.
    """
    start = time.perf_counter()
    result = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
    if result.returncode == EXIT_SKIP:
        raise ClusterUnavailable(result.stderr.strip())
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
    return time.perf_counter() - start


@dataclass(frozen=True)
class SlurmCluster:
    """A running cluster: its scratch folder and how clients reach it."""

    directory: Path
    start_seconds: float

    @property
    def conf(self) -> Path:
        """slurm.conf of the cluster (clients find it through SLURM_CONF)."""
        return self.directory / "slurm.conf"

    def environment(self) -> dict[str, str]:
        """This process's environment for a client of the cluster: SLURM_CONF
        set, and no SLURM_* variable of an enclosing job."""
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
        environment["SLURM_CONF"] = str(self.conf)
        return environment

    def job_states(self) -> dict[str, str]:
        """SLURM state (COMPLETED, FAILED, ...) of every job the controller
        still remembers (finished jobs: for MinJobAge = 3600 s), by job id."""
        output = subprocess.run(
            ["squeue", "--states=all", "--noheader", "--format=%i|%T"],
            env=self.environment(),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return dict(line.split("|", 1) for line in output.split())

    def job_details(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` of a job the controller still remembers, as
        {field: value} (e.g. TresPerJob=gres:gpu:2, NumCPUs=4)."""
        output = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", job_id],
            env=self.environment(),
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return dict(field.split("=", 1) for field in output.split() if "=" in field)


@contextlib.contextmanager
def machine_lock(wait_seconds: float) -> Iterator[None]:
    """Hold the machine-wide lock of the test cluster (the SLURM ports are
    fixed, so one cluster at a time); wait for it at most `wait_seconds`."""
    REGISTRY.mkdir(parents=True, exist_ok=True)
    with open(REGISTRY / "lock", "w") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"another test cluster held {REGISTRY / 'lock'} for more than {wait_seconds:.0f} s"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def single_node_cluster(gpus: int = 2, max_seconds: int = 1800) -> Iterator[SlurmCluster]:
    """Start a single-node cluster on localhost and stop it on exit, whatever
    happens: also when this process is killed (a watchdog started with the
    cluster stops it when this process is gone) or after `max_seconds`.
    Hold `machine_lock` around it.

    The scratch folder lies under /tmp (munged, running as the munge user,
    must reach it) and is removed afterwards unless the block raised, so
    that the daemons' logs stay for a post-mortem.
    """
    scratch = Path(tempfile.mkdtemp(prefix="augane-slurm-", dir="/tmp"))
    scratch.chmod(0o755)
    directory = scratch / "cluster"
    start = time.perf_counter()
    failed = True
    try:
        start_cluster(directory, owner=os.getpid(), max_seconds=max_seconds, gpus=gpus)
        yield SlurmCluster(directory, time.perf_counter() - start)
        failed = False
    finally:
        stop_cluster(directory)
        if not failed:
            shutil.rmtree(scratch, ignore_errors=True)


def start_cluster(directory: Path, owner: int | None, max_seconds: int = 1800, gpus: int = 2) -> None:
    """`slurm-cluster.sh start`: raises RuntimeError with the script's
    messages (and the daemons' logs) when the cluster did not come up."""
    command = ["bash", str(SCRIPT), "start", str(directory), "--max-seconds", str(max_seconds), "--gpus", str(gpus)]
    if owner is not None:
        command += ["--owner-pid", str(owner)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"could not start the test cluster in {directory}:\n{result.stderr}")


def stop_cluster(directory: Path) -> None:
    """`slurm-cluster.sh stop`: cancel the cluster's jobs, stop its processes."""
    result = subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"could not stop the test cluster in {directory}:\n{result.stderr}")


def cluster_processes(directory: Path) -> list[int]:
    """PIDs of the processes of the cluster in `directory` (daemons, job
    steps, job processes, watchdog): those whose environment carries
    AUGANE_SLURM_CLUSTER=<directory>."""
    marker = f"AUGANE_SLURM_CLUSTER={directory}".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in variables:
            pids.append(int(environ.parent.name))
    return pids


def port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket() as connection:
        return connection.connect_ex(("127.0.0.1", port)) == 0


# --- Snakemake runs --------------------------------------------------------------------

_SUBMITTED = re.compile(r"^Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$", re.MULTILINE)
_SUBMITTED_ARRAY = re.compile(r"^Submitted array job with Snakemake IDs \S+ and SLURM job ID (\d+)\.", re.MULTILINE)
# A job's execution as Snakemake prints it: "localrule NAME:" (or
# "localcheckpoint NAME:") then indented fields. ("rule NAME:" announces a
# job handed to an executor, not its run.)
_EXECUTION = re.compile(r"^local(?:rule|checkpoint) (\w+):\n((?:    .*\n?)+)", re.MULTILINE)
# A log file that Snakemake copies into its output (--show-failed-logs).
_SHOWN_LOG = re.compile(r"^Logfile .+:\n(=+)\n.*?^\1$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class SnakemakeRun:
    """A finished Snakemake run: exit status, wall time and its output."""

    returncode: int
    seconds: float
    output: str
    directory: Path

    def check(self) -> SnakemakeRun:
        """Raise with the end of the output unless the run succeeded."""
        if self.returncode != 0:
            raise AssertionError(f"snakemake exited with {self.returncode}:\n{self.output[-8000:]}")
        return self

    def submissions(self) -> list[str]:
        """SLURM job ids of the run's sbatch calls, in order (an array job
        counts once)."""
        return [match[1] for match in _SUBMITTED.findall(self.output)] + _SUBMITTED_ARRAY.findall(self.output)

    def local_executions(self) -> set[tuple[str, str]]:
        """(rule, outputs) of the jobs that this Snakemake process ran itself
        rather than through an executor plugin (log files it merely shows
        left out)."""
        return executions(_SHOWN_LOG.sub("", self.output))

    def slurm_logs(self) -> dict[str, str]:
        """Text of the SLURM log (`sbatch --output`) of each submission, by
        SLURM job id."""
        logs = {}
        for _, job_id, path in _SUBMITTED.findall(self.output):
            log = Path(path)
            logs[job_id] = log.read_text() if log.is_file() else ""
        return logs


def executions(text: str) -> set[tuple[str, str]]:
    """(rule, outputs) of every job execution printed in a Snakemake log
    (jobs without outputs, such as target rules, left out)."""
    found = set()
    for rule, fields in _EXECUTION.findall(text):
        outputs = re.search(r"^    output: (.*)$", fields, re.MULTILINE)
        if outputs:
            found.add((rule, outputs[1]))
    return found


def run_snakemake(
    arguments: Sequence[str],
    directory: Path,
    environment: dict[str, str] | None = None,
    timeout: int = 900,
) -> SnakemakeRun:
    """Run Snakemake in `directory`, bounded by `timeout` seconds.

    Snakemake waiting on a SLURM job that will never report back ignores
    SIGTERM, so the bound sends SIGINT (its clean interrupt, which also
    cancels the submitted jobs), then SIGKILL 60 s later.
    """
    command = ["timeout", "-s", "INT", "-k", "60", str(timeout), str(SNAKEMAKE), *arguments]
    start = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=directory,
        env=environment if environment is not None else dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return SnakemakeRun(result.returncode, time.perf_counter() - start, result.stdout, directory)
