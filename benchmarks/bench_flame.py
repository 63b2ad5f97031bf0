"""Forward time of the FLAME layer next to smplx's FLAME on the same input.

Model: a FLAME-sized model with random arrays (5023 vertices, 9976 triangles,
300 + 100 blend shapes, 36 pose correctives, 5 joints; timing does not depend
on the values), written to a temporary folder in the layout each side reads.
Both decode 100 shape + 50 expression coefficients and a full pose (global,
neck, jaw, eyes) and return vertices and 68 landmarks (51 static + the dynamic
contour). Peer: ``smplx.FLAME`` (``use_face_contour=True``), the reference
implementation AUGANE's layer is tested against.

    python benchmarks/bench_flame.py [--device cpu|cuda|all] [--batch 16 256] [--repeats 20] [--threads T]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from augane.flame.embedding import LandmarkEmbedding68
from augane.flame.io import FLAME_PARENTS, FlameModelData
from augane.flame.layer import FlameLayer

NUM_VERTICES, NUM_FACES = 5023, 9976
N_SHAPE, N_EXP = 100, 50


def flame_sized_model(seed: int = 0) -> tuple[FlameModelData, LandmarkEmbedding68]:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(5, 0.3), NUM_VERTICES)
    regressor = rng.random((5, NUM_VERTICES))
    regressor /= regressor.sum(axis=1, keepdims=True)
    model = FlameModelData(
        v_template=rng.normal(scale=0.05, size=(NUM_VERTICES, 3)),
        faces=rng.integers(0, NUM_VERTICES, (NUM_FACES, 3)),
        shapedirs=rng.normal(scale=1e-3, size=(NUM_VERTICES, 3, 400)),
        posedirs=rng.normal(scale=1e-4, size=(NUM_VERTICES, 3, 36)),
        j_regressor=regressor,
        parents=FLAME_PARENTS,
        weights=weights,
    )

    def bary(*shape):
        values = rng.random((*shape, 3)) + 0.1
        return values / values.sum(-1, keepdims=True)

    static_faces, dynamic_faces = rng.integers(0, NUM_FACES, 51), rng.integers(0, NUM_FACES, (79, 17))
    static_bary, dynamic_bary = bary(51), bary(79, 17)
    embedding = LandmarkEmbedding68(static_faces, static_bary, dynamic_faces, dynamic_bary,
                                    np.concatenate([dynamic_faces[0], static_faces]),
                                    np.concatenate([dynamic_bary[0], static_bary]))
    return model, embedding


def write_smplx_files(folder: Path, model: FlameModelData, embedding: LandmarkEmbedding68) -> None:
    with open(folder / "FLAME_NEUTRAL.pkl", "wb") as handle:
        pickle.dump(model.to_dict(), handle)
    with open(folder / "flame_static_embedding.pkl", "wb") as handle:
        pickle.dump({"lmk_face_idx": embedding.static_faces, "lmk_b_coords": embedding.static_bary}, handle)
    np.save(folder / "flame_dynamic_embedding.npy",
            {"lmk_face_idx": embedding.dynamic_faces, "lmk_b_coords": embedding.dynamic_bary}, allow_pickle=True)


def timed(function, repeats: int, device: torch.device) -> float:
    """Median seconds of ``function()`` over ``repeats`` runs after two warm-up runs."""
    times = []
    for index in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import smplx

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    model, embedding = flame_sized_model()
    print(f"FLAME-sized model: {NUM_VERTICES} vertices, {NUM_FACES} triangles, {N_SHAPE} shape + {N_EXP} "
          f"expression, full pose, 68 landmarks; torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'device':<6} {'batch':>6} {'augane ms':>10} {'smplx ms':>10} {'smplx/augane':>13}")
    with tempfile.TemporaryDirectory() as folder:
        write_smplx_files(Path(folder), model, embedding)
        for device_name in devices:
            device = torch.device(device_name)
            ours = FlameLayer(model, n_shape=N_SHAPE, n_exp=N_EXP, landmark_embedding=embedding).to(device)
            for batch in args.batch:
                peer = smplx.FLAME(folder, num_betas=N_SHAPE, num_expression_coeffs=N_EXP, use_face_contour=True,
                                   batch_size=batch).to(device)
                generator = torch.Generator().manual_seed(batch)
                shape = torch.randn(batch, N_SHAPE, generator=generator).to(device)
                expression = torch.randn(batch, N_EXP, generator=generator).to(device)
                pose = (0.3 * torch.randn(batch, 6, generator=generator)).to(device)
                neck = (0.2 * torch.randn(batch, 3, generator=generator)).to(device)
                eyes = (0.2 * torch.randn(batch, 6, generator=generator)).to(device)
                transl = torch.zeros(batch, 3, device=device)
                with torch.no_grad():
                    augane_s = timed(lambda: ours(shape, expression, pose, neck, eyes), args.repeats, device)
                    smplx_s = timed(
                        lambda: peer(betas=shape, expression=expression, global_orient=pose[:, :3],
                                     jaw_pose=pose[:, 3:], neck_pose=neck, leye_pose=eyes[:, :3],
                                     reye_pose=eyes[:, 3:], transl=transl),
                        args.repeats, device,
                    )
                print(f"{device_name:<6} {batch:>6} {1e3 * augane_s:>10.2f} {1e3 * smplx_s:>10.2f} "
                      f"{smplx_s / augane_s:>13.2f}")


if __name__ == "__main__":
    main()
