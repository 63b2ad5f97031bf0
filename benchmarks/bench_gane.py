"""Forward + backward time of GANE at the paper's sizes, next to DECA's own regressor head.

Sizes: batch 16, N = 27 AU nodes (OpenGraphAU), d = 512, D = 2048, the
default ``model:`` config (2 GATv2 layers x 4 heads, 4 transformer layers x
8 heads, feed-forward 2048). Each configuration is timed as the median of
``--repeats`` steps after ``--warmup`` steps; one step is a forward pass,
a scalar loss over the outputs, and the backward pass. The peer is the MLP
that DECA itself uses to regress its 236 parameters from the same 2048-d
feature (2048 -> 1024 -> 236), so the figures say what GANE adds on top of
the cached features. On CUDA the step also runs under bf16 autocast.

    python benchmarks/bench_gane.py [--device cpu|cuda|all] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from augane.aus import OPENGRAPHAU_MAIN_AUS
from augane.config import validate_config
from augane.model import GANE

BATCH, NUM_AUS, NODE_DIM, GLOBAL_DIM = 16, len(OPENGRAPHAU_MAIN_AUS), 512, 2048


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> tuple[float, float]:
    """Median and minimum milliseconds of ``step``."""
    for _ in range(warmup):
        step()
    _synchronise(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        _synchronise(device)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times)


def inputs(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    afg = torch.randn(BATCH, NUM_AUS, NODE_DIM, generator=generator).to(device)
    feature = torch.rand(BATCH, GLOBAL_DIM, generator=generator).to(device)
    deca = {
        "exp": torch.randn(BATCH, 50, generator=generator).to(device),
        "pose": torch.zeros(BATCH, 6).to(device),
        "cam": torch.tensor([[8.0, 0.0, 0.0]]).repeat(BATCH, 1).to(device),
    }
    return afg, feature, deca


def gane_step(kind: str, device: torch.device, autocast: bool) -> Callable[[], None]:
    section = validate_config({"model": {"gat": {"kind": kind}}})["model"]
    torch.manual_seed(0)
    model = GANE.from_config(section, NUM_AUS, NODE_DIM, GLOBAL_DIM).to(device).train()
    afg, feature, deca = inputs(device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            out = model(afg, feature, deca)
            loss = sum(value.float().pow(2).mean() for value in out.values())
        loss.backward()

    return step


def deca_head_step(device: torch.device, autocast: bool) -> Callable[[], None]:
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(GLOBAL_DIM, 1024), nn.ReLU(), nn.Linear(1024, 236)).to(device)
    _, feature, _ = inputs(device)

    def step() -> None:
        head.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = head(feature).float().pow(2).mean()
        loss.backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA: not available, skipped")
        devices.remove("cuda")
    section = validate_config({})["model"]
    parameters = sum(p.numel() for p in GANE.from_config(section, NUM_AUS, NODE_DIM, GLOBAL_DIM).parameters())
    print(f"GANE forward+backward, batch {BATCH}, N={NUM_AUS}, d={NODE_DIM}, D={GLOBAL_DIM}, {parameters / 1e6:.1f} M parameters")
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
    print(f"{'device':<24} {'model':<34} {'median ms':>10} {'min ms':>8}")
    for name in devices:
        device = torch.device(name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        runs = [(f"GANE gat={kind}", gane_step(kind, device, autocast=False)) for kind in ("gatv2", "gat")]
        if device.type == "cuda":
            runs += [(f"GANE gat={kind} bf16 autocast", gane_step(kind, device, autocast=True)) for kind in ("gatv2",)]
        runs.append(("peer: DECA regressor MLP", deca_head_step(device, autocast=False)))
        for model, step in runs:
            median, best = time_steps(step, device, args.warmup, args.repeats)
            print(f"{label:<24} {model:<34} {median:>10.2f} {best:>8.2f}")


if __name__ == "__main__":
    main()
