"""Wall time of the embedded default end to end (`snakemake --cores 2`), per rule, and its quiet-machine estimate.

Runs the real Snakefile with a config (default: config/config.yaml) in a fresh
working directory, then reads every rule's benchmark file
(`results/benchmarks/**.tsv`: wall seconds ``s`` and ``cpu_time``) and the
job start/finish times of Snakemake's log. Peer: the budget the issue sets
(15 minutes on this 2-core machine for the default, 3 for the tiny config).

On a shared machine the wall times include waiting for other processes'
CPU; Snakemake's ``cpu_time`` samples the job's processes and undercounts
short jobs, so it is reported only as a lower bound of the work done.

    python benchmarks/bench_demo_workflow.py [--configfile config/tiny.yaml] [--workdir DIR]
    python benchmarks/bench_demo_workflow.py --summarise DIR     # an existing run's folder
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "68719476736",
          "MALLOC_TOP_PAD_": "1073741824"}


def run_workflow(workdir: Path, configfile: Path, cores: int) -> float:
    """Run the workflow from nothing in ``workdir``; returns the wall seconds."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(configfile.resolve()), "--cores", str(cores)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env={**os.environ, **MALLOC})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"the workflow failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def rule_benchmarks(workdir: Path) -> pd.DataFrame:
    """One row per job with a benchmark file: rule (file stem path), wall s, cpu_time."""
    rows = []
    for path in sorted((workdir / "results" / "benchmarks").rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rule = path.relative_to(workdir / "results" / "benchmarks").with_suffix("").as_posix()
        rows.append({"job": rule, "stage": rule.split("/")[0], "wall_s": float(table["s"].iloc[-1]),
                     "cpu_s": float(table["cpu_time"].iloc[-1])})
    return pd.DataFrame(rows)


def job_times(workdir: Path) -> tuple[float, list[tuple[str, float, float]]]:
    """(total seconds, [(rule, start, end)]) from the newest Snakemake log."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return float("nan"), []
    text = logs[-1].read_text()
    stamp = r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]"
    events = re.findall(stamp + r"\n(?:local)?(?:rule|checkpoint) (\w+):(?:.|\n)*?jobid: (\d+)", text)
    finished = dict((jobid, when) for when, jobid in re.findall(stamp + r"\nFinished jobid: (\d+)", text))
    parse = lambda value: pd.Timestamp(pd.to_datetime(value, format="%a %b %d %H:%M:%S %Y"))  # noqa: E731
    jobs = [(rule, parse(when), parse(finished[jobid])) for when, rule, jobid in events if jobid in finished]
    if not jobs:
        return float("nan"), []
    origin = min(start for _, start, _ in jobs)
    total = (max(end for _, _, end in jobs) - origin).total_seconds()
    return total, [(rule, (start - origin).total_seconds(), (end - origin).total_seconds()) for rule, start, end in jobs]


def summarise(workdir: Path, wall: float | None = None) -> None:
    table = rule_benchmarks(workdir)
    total, jobs = job_times(workdir)
    print(f"working directory: {workdir}")
    if wall is not None:
        print(f"measured wall time (snakemake --cores 2, from nothing): {wall:.0f} s = {wall / 60:.1f} min")
    print(f"first job start to last job end (Snakemake log): {total:.0f} s")
    if not table.empty:
        grouped = table.assign(count=1).groupby("stage")[["count", "wall_s", "cpu_s"]].sum()
        print("\nper stage (jobs with a benchmark file): jobs, summed wall s, summed CPU s")
        print(grouped.round(1).to_string())
        print("\nslowest jobs:")
        print(table.sort_values("wall_s", ascending=False).head(12).round(1).to_string(index=False))
        cpu = table["cpu_s"].sum()
        print(f"\nCPU seconds of all benchmarked jobs: {cpu:.0f}; on 2 quiet cores at least {cpu / 2:.0f} s "
              f"({cpu / 120:.1f} min) plus the jobs without benchmark files and job start-up")
    by_rule: dict[str, float] = {}
    for rule, start, end in jobs:
        by_rule[rule] = by_rule.get(rule, 0.0) + end - start
    if by_rule:
        print("\nsummed job wall seconds per rule (Snakemake log):")
        for rule, seconds in sorted(by_rule.items(), key=lambda item: -item[1]):
            print(f"  {rule:24s} {seconds:7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=None, help="run here (default: a new temporary folder)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--summarise", type=Path, default=None, help="only summarise the run in this folder")
    args = parser.parse_args()
    if args.summarise is not None:
        summarise(args.summarise)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="augane-demo-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    wall = run_workflow(workdir, args.configfile, args.cores)
    summarise(workdir, wall)


if __name__ == "__main__":
    main()
