"""Forward + backward time of AUGANE's renderer next to DEODR's, on a FLAME-sized mesh.

The mesh has FLAME's size (5023 vertices, 9976 triangles): a subdivided cube
projected onto a head-like ellipsoid with a nose, a neck opening and open
eyes and mouth (all faces outward). A batch of 16 slightly different poses
is seen through DECA's camera (``s = 8``: the head fills the 224 x 224 image
as in a DECA crop).

One step renders per-vertex colours with hard edges (no anti-aliasing) and
back-propagates a given image gradient (random weights) to the vertex
positions and the colours, for the whole batch:

* ``augane``: :func:`augane.render.rasterizer` + :func:`augane.render.interpolation`
  (both windings, as DECA draws), and with back-face culling, eager and with
  the compiled kernels (``fused=True``, :mod:`augane.render.fused`; compiled
  during the warm-up, which is not timed);
* ``augane MeshRenderer``: the full DECA-style render (normals, SH light,
  compositing) for reference;
* ``deodr``: DEODR's C++ rasteriser (``Scene2D``: the same projected 2D
  vertices, depths and colours, ``integer_pixel_centers=False``, edge
  anti-aliasing off so it draws the same image) with its backward pass
  (``renderSceneB``) to the 2D vertices and colours, one image at a time in
  float64. DEODR only back-propagates with back-face culling on, so the fair
  pair is ``augane, culled`` vs ``deodr``; DEODR with its anti-aliased
  silhouettes (``sigma = 1``) is listed too.

The configurations run round-robin (one step of each in turn, ``--repeats``
rounds after ``--warmup``), so that other load on the machine affects all of
them alike; each figure is a median. With one thread the CPU time of the
step is printed too (it does not count time the process waited for a core).
The script runs under the Makefile's glibc allocator settings (large blocks
kept mapped, as the workflow runs), re-executing itself to set them. Peak
memory is measured in a fresh process per configuration (growth of the peak
resident set size over one step on CPU, Linux only;
``max_memory_allocated`` on CUDA).

    python benchmarks/bench_render.py [--threads 1,2] [--device cpu|cuda|all] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from augane.flame.camera import normalised_to_pixels, project
from augane.render import MeshRenderer, RenderSettings, default_light, interpolate, rasterize

BATCH, SIZE = 16, 224


def head_like_mesh(subdivisions: int = 29) -> tuple[np.ndarray, np.ndarray]:
    """A FLAME-sized head stand-in: (5023, 3) float32 vertices (metres, y up, facing +z), (9976, 3) faces."""
    n = subdivisions
    grid = np.linspace(-1.0, 1.0, n + 1)
    index: dict[tuple[float, float, float], int] = {}
    points: list[np.ndarray] = []
    triangles: list[tuple[int, int, int]] = []
    middle = n // 2

    def removed(axis: int, sign: float, i: int, j: int) -> bool:
        neck = axis == 1 and sign < 0 and middle - 3 <= i <= middle + 2 and middle - 3 <= j <= middle + 2
        mouth = axis == 2 and sign > 0 and j == middle - 6 and middle - 6 <= i <= middle + 5
        eyes = axis == 2 and sign > 0 and j == middle + 4 and (middle - 7 <= i <= middle - 3 or middle + 3 <= i <= middle + 7)
        return neck or mouth or eyes

    for a, b, axis in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        for sign in (1.0, -1.0):
            ids = np.empty((n + 1, n + 1), dtype=np.int64)
            for i in range(n + 1):
                for j in range(n + 1):
                    point = np.zeros(3)
                    point[a], point[b], point[axis] = grid[i], grid[j], sign
                    key = tuple(np.round(point, 9))
                    if key not in index:
                        index[key] = len(points)
                        points.append(point)
                    ids[i, j] = index[key]
            for i in range(n):
                for j in range(n):
                    if not removed(axis, sign, i, j):
                        q = ids[i, j], ids[i + 1, j], ids[i + 1, j + 1], ids[i, j + 1]
                        triangles += [(q[0], q[1], q[2]), (q[0], q[2], q[3])]
    vertices = np.array(points)
    faces = np.array(triangles)
    used = np.unique(faces)
    remap = np.full(len(vertices), -1)
    remap[used] = np.arange(len(used))
    vertices, faces = vertices[used], remap[faces]
    corners = vertices[faces]
    outward = (np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]) * corners.mean(1)).sum(1) > 0
    faces[~outward] = faces[~outward][:, ::-1]
    unit = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    head = unit * np.array([0.075, 0.1, 0.09])
    nose = np.exp(-(unit[:, 0] ** 2 / 0.01 + (unit[:, 1] + 0.05) ** 2 / 0.03)) * (unit[:, 2] > 0)
    head[:, 2] += 0.025 * nose
    return head.astype(np.float32), faces.astype(np.int64)


def batch_scene(device: torch.device, batch: int = BATCH, seed: int = 0):
    """(B, V, 3) posed vertices, (F, 3) faces, (B, 3) cameras, (B, V, 3) colours."""
    vertices, faces = head_like_mesh()
    generator = torch.Generator().manual_seed(seed)
    yaw = (torch.rand(batch, generator=generator) - 0.5) * 0.6
    pitch = (torch.rand(batch, generator=generator) - 0.5) * 0.3
    cy, sy, cp, sp = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    rot_y = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(batch, 3, 3)
    rot_x = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).view(batch, 3, 3)
    posed = torch.tensor(vertices)[None] @ (rot_x @ rot_y).transpose(1, 2)
    cam = torch.stack([8.0 + torch.rand(batch, generator=generator), torch.zeros(batch), 0.01 * torch.ones(batch)], -1)
    colours = torch.rand(batch, vertices.shape[0], 3, generator=generator)
    return posed.to(device), torch.tensor(faces, device=device), cam.to(device), colours.to(device)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def round_robin(
    steps: list[tuple[str, Callable[[], None]]], device: torch.device, warmup: int, repeats: int
) -> dict[str, tuple[float, float]]:
    """Median wall and CPU time (ms) of each step, the steps run one after the other ``repeats`` times."""
    for _, step in steps:
        for _ in range(warmup):
            step()
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in steps}
    for _ in range(repeats):
        for label, step in steps:
            synchronise(device)
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            synchronise(device)
            times[label].append(((time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0))
    return {label: tuple(statistics.median(t[k] for t in runs) for k in (0, 1)) for label, runs in times.items()}


def count_operations(step: Callable[[], None]) -> int:
    """Top-level ATen operations (views excluded) in one step, from the profiler."""
    views = {"aten::view", "aten::select", "aten::slice", "aten::expand", "aten::reshape", "aten::t", "aten::transpose",
             "aten::unsqueeze", "aten::squeeze", "aten::as_strided", "aten::unbind", "aten::permute", "aten::alias",
             "aten::detach", "aten::empty", "aten::lift_fresh", "aten::split", "aten::_reshape_alias"}
    with torch.profiler.profile() as profiler:
        step()
    return sum(
        1
        for event in profiler.events()
        if event.name.startswith("aten::") and event.name not in views
        and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
    )


def augane_step(
    vertices, faces, cam, colours, weights, size: int, cull: bool, fused: bool = False
) -> Callable[[], None]:
    """One forward + backward of the colour-interpolation render (the task DEODR performs)."""

    def step() -> None:
        v = vertices.detach().requires_grad_(True)
        c = colours.detach().requires_grad_(True)
        fragments = rasterize(project(v, cam), faces, size, cull_backfaces=cull, fused=fused)
        interpolate(fragments, c).backward(weights)

    return step


def renderer_step(vertices, faces, cam, colours, weights, size: int) -> Callable[[], None]:
    """One forward + backward of the full MeshRenderer (normals, SH light, compositing)."""
    renderer = MeshRenderer(faces, RenderSettings(image_size=size)).to(vertices.device)
    light = default_light(vertices.shape[0], device=vertices.device)
    image_weights = weights.permute(0, 3, 1, 2)

    def step() -> None:
        v = vertices.detach().requires_grad_(True)
        c = colours.detach().requires_grad_(True)
        renderer(v, cam, albedo=c, light=light).image.backward(image_weights)

    return step


def deodr_step(vertices, faces, cam, colours, weights, size: int, antialiased: bool) -> Callable[[], None]:
    """DEODR's forward + backward for each image of the batch in turn (float64, back-face culling).

    Hard edges: no edge is flagged for anti-aliasing; otherwise DEODR's silhouette
    edges are, with its default width ``sigma = 1``.
    """
    sigma = 1.0
    from deodr import differentiable_renderer as dr
    from deodr.triangulated_mesh import ColoredTriMesh

    screen = project(vertices.cpu(), cam.cpu())
    ij = normalised_to_pixels(screen[..., :2], size).double().numpy()
    depths = (screen[..., 2] - screen[..., 2].min() + 1.0).double().numpy()
    faces_np = faces.cpu().numpy().astype(np.uint32)
    colours_np = colours.cpu().double().numpy()
    weights_np = weights.cpu().double().numpy()
    scenes = []
    for b in range(vertices.shape[0]):
        if antialiased:
            mesh = ColoredTriMesh(faces_np, vertices[b].cpu().double().numpy(), colors=colours_np[b])
            edgeflags = mesh.edge_on_silhouette(ij[b])
        else:
            edgeflags = np.zeros((len(faces_np), 3), dtype=bool)
        scenes.append(
            dr.Scene2D(
                faces=faces_np, faces_uv=faces_np, ij=ij[b].copy(), depths=depths[b].copy(),
                textured=np.zeros(len(faces_np), dtype=bool), uv=np.zeros((len(ij[b]), 2)),
                shade=np.zeros(len(ij[b])), colors=colours_np[b].copy(), shaded=np.zeros(len(faces_np), dtype=bool),
                edgeflags=edgeflags, height=size, width=size, nb_colors=3, texture=np.zeros((1, 1, 3)),
                background_color=np.zeros(3), clockwise=False, backface_culling=True, integer_pixel_centers=False,
            )
        )

    def step() -> None:
        for b, scene in enumerate(scenes):
            image, z_buffer = scene.render(sigma)
            scene.clear_gradients()
            dr.renderSceneB(scene, sigma, image.copy(), z_buffer, weights_np[b].copy())

    return step, scenes


def coverage_check(vertices, faces, cam, size: int, scenes) -> float:
    """Fraction of pixels where AUGANE (culled) and DEODR disagree on coverage (sanity check of the pairing)."""
    ours = rasterize(project(vertices.cpu(), cam.cpu()), faces.cpu(), size, cull_backfaces=True).mask.numpy()
    theirs = np.stack([np.isfinite(scene.render(1.0)[1]) for scene in scenes])
    return float((ours != theirs).mean())


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_child(batch: int, size: int, device_name: str) -> None:
    """Run one forward + backward of the full renderer and print the peak memory in MiB (JSON)."""
    device = torch.device(device_name)
    vertices, faces, cam, colours = batch_scene(device, batch)
    weights = torch.rand(batch, size, size, 3, device=device)
    step = renderer_step(vertices, faces, cam, colours, weights, size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak resident size (VmHWM) to the current one
        base = _status_kib("VmRSS")
        step()
        peak = (_status_kib("VmHWM") - base) / 1024
    print(json.dumps({"peak_mib": peak}))


def peak_memory(batch: int, size: int, device_name: str, threads: int) -> float:
    command = [sys.executable, __file__, "--peak-memory-child", str(batch), str(size), device_name,
               "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


ALLOCATOR_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "68719476736",
    "MALLOC_TOP_PAD_": "1073741824",
}
"""The Makefile's glibc settings: large blocks stay mapped (eager PyTorch on CPU is much faster so)."""


def ensure_allocator_settings() -> None:
    """Re-execute this script under :data:`ALLOCATOR_SETTINGS` where they are not set (Linux)."""
    missing = {key: value for key, value in ALLOCATOR_SETTINGS.items() if key not in os.environ}
    if missing and sys.platform.startswith("linux"):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing})


def benchmark_cpu_threads(threads: int, warmup: int, repeats: int) -> None:
    """Round-robin of AUGANE (three ways) and DEODR at one torch thread count, then the ratios."""
    torch.set_num_threads(threads)
    device = torch.device("cpu")
    vertices, faces, cam, colours = batch_scene(device)
    weights = torch.rand(BATCH, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(1))
    deodr_hard, scenes = deodr_step(vertices, faces, cam, colours, weights, SIZE, antialiased=False)
    deodr_soft, _ = deodr_step(vertices, faces, cam, colours, weights, SIZE, antialiased=True)
    steps = [
        ("augane rasterize+interpolate", augane_step(vertices, faces, cam, colours, weights, SIZE, cull=False)),
        ("augane rasterize+interpolate, culled", augane_step(vertices, faces, cam, colours, weights, SIZE, cull=True)),
        ("augane culled, fused kernels", augane_step(vertices, faces, cam, colours, weights, SIZE, cull=True,
                                                     fused=True)),
        ("augane MeshRenderer (SH light)", renderer_step(vertices, faces, cam, colours, weights, SIZE)),
        ("deodr, culled, hard edges", deodr_hard),
        ("deodr, culled, anti-aliased silhouettes", deodr_soft),
    ]
    results = round_robin(steps, device, warmup, repeats)
    cpu_note = " (CPU time of the step)" if threads == 1 else ""
    print(f"\n[cpu, {threads} torch thread(s)] forward + backward, batch {BATCH} at {SIZE}x{SIZE}, "
          f"median of {repeats} round-robin rounds{cpu_note}")
    for label, (wall, cpu) in results.items():
        extra = f"   cpu {cpu / BATCH:6.2f} ms/image" if threads == 1 else ""
        print(f"  {label:42s} {wall:8.1f} ms/batch {wall / BATCH:7.2f} ms/image{extra}")
    mismatch = coverage_check(vertices, faces, cam, SIZE, scenes)
    print(f"  coverage differs from deodr on {100 * mismatch:.3f}% of pixels")
    theirs = results["deodr, culled, hard edges"]
    for label, name in (("augane rasterize+interpolate, culled", "augane culled"),
                        ("augane culled, fused kernels", "augane culled, fused")):
        ours = results[label]
        line = f"  speed-up per image, {name} vs deodr (same task): {theirs[0] / ours[0]:.2f}x wall"
        if threads == 1:
            line += f", {theirs[1] / ours[1]:.2f}x CPU time"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default=None,
                        help="comma-separated torch CPU thread counts (default: 1 and torch's default)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--peak-memory-child", nargs=3, metavar=("BATCH", "SIZE", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    ensure_allocator_settings()
    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads}) if args.threads is None else [int(t) for t in args.threads.split(",")]
    if args.peak_memory_child:
        torch.set_num_threads(thread_counts[-1])
        batch, size, device_name = args.peak_memory_child
        peak_memory_child(int(batch), int(size), device_name)
        return

    vertices, faces = head_like_mesh()
    print(f"mesh: {vertices.shape[0]} vertices, {faces.shape[0]} faces; batch {BATCH} at {SIZE}x{SIZE}; "
          f"torch {torch.__version__}; {os.cpu_count()} CPU core(s) seen")
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
    for device_name in devices:
        if device_name == "cuda" and not torch.cuda.is_available():
            print("cuda: no CUDA device present, skipped")
            continue
        device = torch.device(device_name)
        if device_name == "cpu":
            for threads in thread_counts:
                benchmark_cpu_threads(threads, args.warmup, args.repeats)
            torch.set_num_threads(1)
            v, f, cam, colours = batch_scene(device)
            weights = torch.rand(BATCH, SIZE, SIZE, 3)
            operations = count_operations(augane_step(v, f, cam, colours, weights, SIZE, cull=True))
            print(f"  ATen operations per augane forward + backward (views excluded): {operations}")
        else:
            vertices_b, faces_b, cam, colours = batch_scene(device)
            weights = torch.rand(BATCH, SIZE, SIZE, 3, device=device)
            steps = [
                ("augane rasterize+interpolate", augane_step(vertices_b, faces_b, cam, colours, weights, SIZE, cull=False)),
                ("augane rasterize+interpolate, culled", augane_step(vertices_b, faces_b, cam, colours, weights, SIZE, cull=True)),
                ("augane MeshRenderer (SH light)", renderer_step(vertices_b, faces_b, cam, colours, weights, SIZE)),
            ]
            results = round_robin(steps, device, args.warmup, args.repeats)
            print(f"\n[{device_name}] forward + backward, batch {BATCH} at {SIZE}x{SIZE}")
            for label, (wall, _) in results.items():
                print(f"  {label:42s} {wall:8.1f} ms/batch {wall / BATCH:7.2f} ms/image")
        print(f"\n[{device_name}] peak memory of one MeshRenderer forward + backward")
        for batch, size in [(16, 224), (4, 512)]:
            print(f"  batch {batch:2d} at {size}x{size}: {peak_memory(batch, size, device_name, thread_counts[-1]):8.1f} MiB")


if __name__ == "__main__":
    main()
