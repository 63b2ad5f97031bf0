"""Time of one GANE training step, split into its stages, at the paper's and the demo world's sizes.

One step of ``augane train`` (:class:`augane.train.objective.TrainingStep`
plus the Adam update) on a batch of 16, split into:

* GANE: the forward pass of GANE (bf16 autocast on CUDA, as training);
* FLAME + landmarks: decoding, projection and L_auLmk, L_auRel, L_reg;
* render: UV albedo from DECA's tex, rasterisation, SH shading, compositing over the crop;
* detector on render: the frozen AU detector's preprocessing and forward pass, L_auFeat;
* backward: through all of the above into GANE's weights;
* optimiser: Adam.

The split times each stage between device synchronisations; ``full step``
is the same step without intermediate synchronisation (what training
pays). The peer line is an ordinary training step (forward, backward,
Adam) of the detector's own ResNet trunk on the same batch at its input
size, the cost of training a plain CNN on these images.

Sizes (weights are random: only time matters):

* ``paper``: a FLAME-sized head mesh (about 5k vertices, 9.8k triangles; a
  closed ellipsoid made here, FLAME itself is licensed), 224 x 224 crops,
  ResNet-50 OpenGraphAU detector (Resize 256, CenterCrop 224; 27 AFG nodes of
  512), DECA's 2048-d feature, the default ``model:`` section;
* ``demo``: the demo face model from ``results/demo/face_model`` (``snakemake
  demo_face_model``; skipped when absent), 128 x 128 crops, ResNet-18
  detector (Resize 128, CenterCrop 112; 27 nodes of 128), DECA ResNet-18
  feature (512).

    python benchmarks/bench_train_step.py [--device cpu|cuda|all] [--size paper|demo|all] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from augane.config import validate_config
from augane.flame.embedding import MediapipeEmbedding
from augane.flame.io import FLAME_PARENTS, FlameModelData
from augane.flame.layer import FlameLayer
from augane.flame.texture import AlbedoLayer, AlbedoSpace, FLAME_TEXTURE_LAYOUT
from augane.landmarks import MEDIAPIPE_105
from augane.losses import au_feature_loss, au_landmark_loss, au_relative_loss, project_landmarks, regularisation_terms
from augane.losses import weighted_total
from augane.model import GANE
from augane.nets.au_preprocess import FrozenAuDetector
from augane.nets.deca import DECA_PARAM_LAYOUT
from augane.nets.mefarg import MEFARG
from augane.nets.resnet import ResNet, resnet_feature_dim
from augane.render.renderer import MeshRenderer, RenderSettings
from augane.render.shading import default_light
from augane.render.texture import UVLayout
from augane.train.dataset import CacheLayout, parse_au_name
from augane.train.face import FaceDecoder
from augane.train.objective import PREDICTED, AuObjective, LossSettings, TrainingStep, precision_context

BATCH = 16
DEMO_FACE_MODEL = Path("results/demo/face_model")


def ellipsoid_head(rows: int = 69, columns: int = 73) -> tuple[FlameModelData, np.ndarray, np.ndarray]:
    """A closed ellipsoid (metres, facing +z) with FLAME-like counts, random blend shapes, and its UVs."""
    rng = np.random.default_rng(0)
    theta = np.linspace(0.05, np.pi - 0.05, rows)[:, None]
    phi = np.linspace(-np.pi, np.pi, columns, endpoint=False)[None]
    vertices = np.stack(np.broadcast_arrays(0.08 * np.sin(theta) * np.sin(phi), 0.11 * np.cos(theta),
                                            0.09 * np.sin(theta) * np.cos(phi)), -1).reshape(-1, 3)
    faces = []
    for row in range(rows - 1):
        for column in range(columns):
            a, b = row * columns + column, row * columns + (column + 1) % columns
            faces += [(a, b, a + columns), (b, b + columns, a + columns)]
    faces = np.asarray(faces, dtype=np.int64)
    count = len(vertices)
    weights = np.zeros((count, 5))
    weights[:, 0] = 1.0
    jaw = vertices[:, 1] < -0.03
    weights[jaw] = 0.0
    weights[jaw, 2] = 1.0
    j_regressor = np.zeros((5, count))
    j_regressor[np.arange(5), rng.choice(count, 5, replace=False)] = 1.0
    model = FlameModelData(v_template=vertices, faces=faces, shapedirs=rng.normal(0, 1e-3, (count, 3, 400)),
                           posedirs=rng.normal(0, 1e-4, (count, 3, 36)), j_regressor=j_regressor,
                           parents=FLAME_PARENTS, weights=weights, source="ellipsoid")
    uvs = np.stack([(np.broadcast_to(phi, (rows, columns)) + np.pi) / (2 * np.pi),
                    1 - np.broadcast_to(theta, (rows, columns)) / np.pi], -1).reshape(-1, 2)
    return model, faces, uvs


def paper_face(image_size: int) -> FaceDecoder:
    model, faces, uvs = ellipsoid_head()
    front = np.flatnonzero(model.v_template[model.faces].mean(1)[:, 2] > 0.06)
    rng = np.random.default_rng(1)
    embedding = MediapipeEmbedding(faces=rng.choice(front, 105), bary=np.full((105, 3), 1 / 3),
                                   landmark_indices=np.asarray(MEDIAPIPE_105, dtype=np.int64))
    flame = FlameLayer(model, mediapipe_embedding=embedding)
    space = AlbedoSpace(mean=np.full((256, 256, 3), 0.6, np.float32),
                        basis=rng.normal(0, 0.01, (256, 256, 3, 50)).astype(np.float32), layout=FLAME_TEXTURE_LAYOUT)
    renderer = MeshRenderer(torch.from_numpy(faces), RenderSettings(image_size=image_size),
                            uv_layout=UVLayout.from_arrays(uvs, faces, len(faces)))
    return FaceDecoder(flame, renderer, AlbedoLayer(space, n_tex=50))


def demo_face(image_size: int) -> FaceDecoder | None:
    if not (DEMO_FACE_MODEL / "face_model.pkl").is_file():
        return None
    resources = {"face_model": DEMO_FACE_MODEL / "face_model.pkl",
                 "mediapipe_embedding": DEMO_FACE_MODEL / "mediapipe_landmark_embedding.npz",
                 "head_template": DEMO_FACE_MODEL / "head_template.obj",
                 "albedo_model": DEMO_FACE_MODEL / "albedo_model.npz"}
    return FaceDecoder.from_config({"resources": {k: str(v) for k, v in resources.items()}, "render": {}}, image_size)


SIZES = {
    # name: (face builder, crop, detector backbone, resize, detector input, DECA backbone)
    "paper": (paper_face, 224, "resnet50", 256, 224, "resnet50"),
    "demo": (demo_face, 128, "resnet18", 128, 112, "resnet18"),
}


class Setup:
    """Networks and one batch at a given size on a device."""

    def __init__(self, size: str, device: torch.device) -> None:
        build, crop, backbone, resize, detector_input, deca_backbone = SIZES[size]
        face = build(crop)
        if face is None:
            raise FileNotFoundError(f"{DEMO_FACE_MODEL} is missing (snakemake demo_face_model)")
        torch.manual_seed(0)
        network = MEFARG("opengraphau", "anfl", backbone).eval()
        detector = FrozenAuDetector(network, resize=resize, crop=detector_input)
        node_dim, global_dim = network.channels, resnet_feature_dim(deca_backbone)
        layout = CacheLayout(detector_aus=tuple(parse_au_name(n) for n in network.au_names),
                             afg_aus=tuple(network.afg_aus), node_dim=node_dim, global_dim=global_dim,
                             param_layout=tuple(DECA_PARAM_LAYOUT.items()), image_size=crop)
        config = validate_config({"device": device.type})
        self.device = device
        self.bf16 = device.type == "cuda"
        self.face = face.to(device)
        self.detector = detector.to(device)
        self.objective = AuObjective(self.face, self.detector, layout, LossSettings.from_config(config), bf16=self.bf16)
        self.gane = GANE.from_config(config["model"], layout.num_aus, node_dim, global_dim).to(device).train()
        self.step = TrainingStep(self.gane, self.objective, bf16=self.bf16)
        self.optimizer = torch.optim.Adam(self.gane.parameters(), lr=1e-5)
        self.batch = self._batch(layout, crop)
        self.peer_trunk = ResNet(backbone).to(device)
        self.peer_optimizer = torch.optim.Adam(self.peer_trunk.parameters(), lr=1e-5)
        self.peer_images = torch.rand(BATCH, 3, detector_input, detector_input, device=device)
        self.label = f"{size}: {self.face.flame.num_vertices} v / {int(self.face.renderer.faces.shape[0])} f, " \
                     f"{crop} px, {backbone} at {detector_input}, N={layout.num_aus} d={node_dim} D={global_dim}"

    def _batch(self, layout: CacheLayout, crop: int) -> dict:
        generator = torch.Generator().manual_seed(0)
        flame = self.face.flame
        extent = float((flame.v_template[:, :2].max(0).values - flame.v_template[:, :2].min(0).values).max())
        params = {
            "shape": torch.randn(BATCH, 100, generator=generator) * 0.5,
            "tex": torch.randn(BATCH, 50, generator=generator) * 0.5,
            "exp": torch.randn(BATCH, 50, generator=generator) * 0.5,
            "pose": torch.randn(BATCH, 6, generator=generator) * 0.05,
            "cam": torch.tensor([[1.8 / extent, 0.0, 0.0]]).repeat(BATCH, 1),
            "light": default_light(BATCH),
        }
        with torch.no_grad():
            landmarks = project_landmarks(flame.cpu()(params["shape"], params["exp"], params["pose"]).landmarks105,
                                          params["cam"])
        flame.to(self.device)
        batch = {
            "image": torch.rand(BATCH, 3, crop, crop, generator=generator),
            "landmarks_ndc": landmarks + 0.01 * torch.randn(landmarks.shape, generator=generator),
            "au_prob": torch.rand(BATCH, len(layout.detector_aus), generator=generator),
            "afg": torch.randn(BATCH, layout.num_aus, layout.node_dim, generator=generator),
            "deca_feature": torch.rand(BATCH, layout.global_dim, generator=generator),
            "deca_params": params,
        }
        return _to(batch, self.device)

    def split_step(self) -> dict[str, float]:
        """One step with a synchronisation after each stage; milliseconds per stage."""
        times: dict[str, float] = {}
        batch, deca, objective = self.batch, self.batch["deca_params"], self.objective
        clock = _Clock(self.device, times)
        with clock("GANE"):
            params = self.step.predict(batch)
        with clock("FLAME + landmarks"):
            face = self.face.decode(deca["shape"], params["exp"], params["pose"])
            landmarks = project_landmarks(face.landmarks105, params["cam"])
            terms = {
                **au_landmark_loss(landmarks, batch["landmarks_ndc"], batch["au_prob"], objective.detector_aus),
                **au_relative_loss(landmarks, batch["landmarks_ndc"]),
                **regularisation_terms(params["exp"], params["pose"], params["cam"], deca["cam"]),
            }
        with clock("render"):
            image = self.face.render(face.vertices, params["cam"], deca["tex"], deca["light"], batch["image"]).image
        with clock("detector on render"):
            with precision_context(self.device, self.bf16):
                afg = self.detector(image).afg
            terms.update(au_feature_loss(batch["afg"], afg.float()))
        with clock("backward"):
            weighted_total(terms, objective.settings.weights).backward()
        with clock("optimiser"):
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return times

    def full_step(self) -> None:
        result = self.step(self.batch)
        result.total.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def peer_step(self) -> None:
        with precision_context(self.device, self.bf16):
            loss = self.peer_trunk(self.peer_images).pooled.float().pow(2).mean()
        loss.backward()
        self.peer_optimizer.step()
        self.peer_optimizer.zero_grad(set_to_none=True)


class _Clock:
    def __init__(self, device: torch.device, times: dict[str, float]) -> None:
        self.device, self.times = device, times

    def __call__(self, name: str) -> _Clock:
        self.name = name
        return self

    def __enter__(self) -> None:
        _synchronise(self.device)
        self.started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        _synchronise(self.device)
        self.times[self.name] = (time.perf_counter() - self.started) * 1000


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    return {key: _to(item, device) for key, item in value.items()}


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        step()
    _synchronise(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        _synchronise(device)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--size", choices=["paper", "demo", "all"], default="all")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA: not available, skipped")
        devices.remove("cuda")
    sizes = ["paper", "demo"] if args.size == "all" else [args.size]
    print(f"GANE training step, batch {BATCH}; torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
    for name in devices:
        device = torch.device(name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        precision = "bf16 autocast (GANE, detector)" if device.type == "cuda" else "fp32"
        for size in sizes:
            try:
                setup = Setup(size, device)
            except FileNotFoundError as err:
                print(f"{label}: {size} skipped ({err})")
                continue
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(args.warmup):
                setup.split_step()
            splits = [setup.split_step() for _ in range(args.repeats)]
            full = median_ms(setup.full_step, device, 1, args.repeats)
            peer = median_ms(setup.peer_step, device, 1, args.repeats)
            print(f"\n{label}, {precision}; {setup.label}")
            print(f"  {'stage':<22} {'median ms':>10}")
            for stage in splits[0]:
                print(f"  {stage:<22} {statistics.median(s[stage] for s in splits):>10.1f}")
            print(f"  {'sum of stages':<22} {statistics.median(sum(s.values()) for s in splits):>10.1f}")
            print(f"  {'full step':<22} {full:>10.1f}")
            print(f"  {'peer: CNN train step':<22} {peer:>10.1f}")
            if device.type == "cuda":
                print(f"  peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
