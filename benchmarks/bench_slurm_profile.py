"""What the SLURM profile costs and saves, on a live single-node cluster.

Runs the tiny config of the SLURM integration test (tests/cluster/) three
times, each in a fresh working directory: locally (`--cores all`, the peer),
through `snakemake --profile profiles/slurm --profile tests/profiles/slurm-local`
with the profile's job groups, and the same with every group limited to one
job (`--group-components ...=1`, i.e. one submission per job). Prints the
SLURM setup time (package installation when missing, cluster start), the wall
time of each run and the number of sbatch submissions.

Needs root and apt-get (it installs and starts the same throw-away cluster as
the tests, and stops it afterwards). Run from the repository root:

    python benchmarks/bench_slurm_profile.py [--shard-size N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster import slurm  # noqa: E402
from tests.cluster.tiny_config import REPO, SNAKEFILE, TARGETS, tiny_workdir  # noqa: E402

PROFILES = [
    "--profile",
    str(REPO / "profiles" / "slurm"),
    "--profile",
    str(REPO / "tests" / "profiles" / "slurm-local"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard-size", type=int, default=8, help="samples per shard (default 8)")
    arguments = parser.parse_args()
    overrides = {"preprocess": {"shard_size": arguments.shard_size}}
    groups = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())["group-components"]
    one_per_group = ["--group-components", *(f"{group}=1" for group in groups)]

    install_seconds = slurm.install()
    with tempfile.TemporaryDirectory(prefix="augane-bench-slurm-") as scratch:
        root = Path(scratch)
        with slurm.machine_lock(900), slurm.single_node_cluster() as cluster:
            local = slurm.run_snakemake(
                ["--snakefile", str(SNAKEFILE), "--cores", "all", *TARGETS],
                tiny_workdir(root / "local", overrides),
            ).check()
            grouped = slurm.run_snakemake(
                ["--snakefile", str(SNAKEFILE), *PROFILES, *TARGETS],
                tiny_workdir(root / "grouped", overrides),
                cluster.environment(),
            ).check()
            ungrouped = slurm.run_snakemake(
                ["--snakefile", str(SNAKEFILE), *PROFILES, *one_per_group, "--", *TARGETS],
                tiny_workdir(root / "ungrouped", overrides),
                cluster.environment(),
            ).check()

    jobs = len(local.local_executions())
    print(f"tiny config: targets {' '.join(TARGETS)}, shard size {arguments.shard_size}, {jobs} jobs")
    print(f"SLURM setup: packages {install_seconds:.1f} s, cluster start {cluster.start_seconds:.1f} s")
    print(f"{'run':<34}{'wall s':>8}{'sbatch':>8}")
    print(f"{'local (--cores all, peer)':<34}{local.seconds:>8.0f}{'-':>8}")
    print(f"{'SLURM, profile groups':<34}{grouped.seconds:>8.0f}{len(grouped.submissions()):>8}")
    print(f"{'SLURM, one job per submission':<34}{ungrouped.seconds:>8.0f}{len(ungrouped.submissions()):>8}")


if __name__ == "__main__":
    main()
