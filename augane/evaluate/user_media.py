"""``augane reconstruct``: 3D faces from users' images, folders and videos, with the evaluation's reconstruction path.

Each frame goes through the same steps as the cached datasets: the
preprocessing's face crop and MediaPipe landmarks
(:class:`augane.preprocess.faces.FaceCropper`), the feature networks
(:class:`augane.features.extract.FeatureExtractor`: AU detector, DECA, and
EMOCA for ``--method emoca``), then one method's reconstruction, render
over the crop and AU detector
(:class:`augane.evaluate.reconstruction.Reconstructor`). Frames are
batched (``batch_size``) for the networks.

Outputs under ``out_dir`` (``<name>`` per input file, see
:func:`augane.evaluate.media.list_sources`; ``<f>`` the 0-based frame as
6 digits, 000000 for an image)::

    <name>/<f>.npz             FLAME parameters (shape, tex, exp, pose, cam, light), vertices (metres),
                               105 landmarks in crop and source pixels, crop transform, AU scores of the
                               detector on the input crop and on the render, the method
    <name>/<f>.obj|.ply        the mesh (unless mesh is None)
    <name>/<f>_render.png      the render alone (render.background_color behind it)
    <name>/<f>_overlay.png     the render composited over the input crop (what the AU detector saw)
    <name>/<f>_frame.png       images: the render pasted back into the whole image
    <name>/side_by_side.mp4    videos: input | reconstruction pasted back, every processed frame
    frames.csv                 one row per frame: source, name, frame, status, detail, output files
    summary.json               settings, networks, per-source and total counts, timings

A frame without a usable face (any :class:`~augane.preprocess.status.Status`
but ok, an unreadable image or video, an undecodable frame, non-finite
network outputs) is recorded with its status and skipped; it never stops
the run. :func:`reconstruct_media` raises :class:`~augane.errors.DataError`
(after writing ``frames.csv`` and ``summary.json``) only when no frame at
all could be reconstructed, saying why for each input.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from augane.errors import ConfigError, DataError
from augane.evaluate.media import MediaFrame, MediaSource, frame_count, iterate_frames, list_sources
from augane.evaluate.overlay import labelled, paste_back, side_by_side
from augane.evaluate.qualitative_images import to_uint8
from augane.evaluate.reconstruction import Reconstructor, check_method
from augane.features.extract import FeatureExtractor
from augane.features.networks import (
    AuDetectorSettings,
    FeatureNetworks,
    load_au_detector_from_config,
    load_deca_from_config,
    load_emoca_from_config,
)
from augane.features.runtime import inference_settings
from augane.flame.camera import normalised_to_pixels, pixels_to_normalised
from augane.flame.export import write_mesh
from augane.io.atomic import atomic_path, write_text_atomic
from augane.io.images import write_image
from augane.io.videos import probe_video, write_video
from augane.landmarks import select_105
from augane.nets.deca import DECA_PARAM_LAYOUT, split_deca_params
from augane.preprocess.crop import apply_transform, invert_transform
from augane.preprocess.faces import FaceCropper, FaceSample
from augane.preprocess.landmarkers import build_landmarker
from augane.preprocess.shard import crop_settings
from augane.preprocess.status import Status
from augane.train.dataset import CacheLayout, parse_au_name

log = logging.getLogger(__name__)

MESH_FORMATS = ("obj", "ply")
SIDE_BY_SIDE = "side_by_side.mp4"
#: Frames held back at most (faces waiting for a full batch, and the frames between them) before a batch is run.
_QUEUE_FACTOR = 4


@dataclass(frozen=True)
class MediaSettings:
    """How ``augane reconstruct`` runs.

    Attributes:
        method: ``augane``, ``deca`` or ``emoca``.
        mesh: ``obj``, ``ply`` or None (no mesh files).
        batch_size: frames per network batch.
        frame_stride: every k-th frame of videos.
        checkpoint: GANE checkpoint for ``augane`` (None: the config's training run).
    """

    method: str = "augane"
    mesh: str | None = "obj"
    batch_size: int = 8
    frame_stride: int = 1
    checkpoint: Path | None = None

    def __post_init__(self) -> None:
        check_method(self.method)
        if self.mesh is not None and self.mesh not in MESH_FORMATS:
            raise ConfigError(f"mesh format must be one of {list(MESH_FORMATS)} or none, got {self.mesh!r}")
        if self.batch_size < 1 or self.frame_stride < 1:
            raise ConfigError(f"batch size and frame stride must be >= 1, got {self.batch_size}, {self.frame_stride}")


@dataclass
class FrameRecord:
    """One row of ``frames.csv``: a frame's outcome and the files written for it (paths relative to the output)."""

    source: str
    name: str
    kind: str
    frame: int
    status: str
    detail: str = ""
    params: str = ""
    mesh: str = ""
    render: str = ""
    overlay: str = ""
    frame_overlay: str = ""


@dataclass
class _Pending:
    """A frame waiting for its batch: its pixels and, when a face was found, the preprocessed sample."""

    frame: MediaFrame
    sample: FaceSample | None
    record: FrameRecord
    composite: np.ndarray | None = None


def network_layout(networks: FeatureNetworks, crop_size: int) -> CacheLayout:
    """The :class:`CacheLayout` of features the networks compute on crops of ``crop_size`` pixels."""
    detector = networks.au_detector
    return CacheLayout(
        detector_aus=tuple(parse_au_name(name) for name in detector.au_names),
        afg_aus=tuple(parse_au_name(name) for name in detector.afg_aus),
        node_dim=int(detector.channels),
        global_dim=int(networks.deca.feature_dim),
        param_layout=tuple(DECA_PARAM_LAYOUT.items()),
        image_size=int(crop_size),
    )


def load_networks(config: Mapping[str, Any], method: str, device: torch.device) -> FeatureNetworks:
    """The AU detector and DECA (and EMOCA for ``method == "emoca"``) of ``resources``, through the feature
    stage's loaders."""
    resources = config["resources"]
    emoca = None
    if method == "emoca":
        emoca = load_emoca_from_config(resources, device)
        if emoca is None:
            raise ConfigError("--method emoca needs EMOCA's checkpoint: set resources.emoca.checkpoint")
    return FeatureNetworks(
        au_detector=load_au_detector_from_config(resources, device),
        au_settings=AuDetectorSettings.from_config(resources),
        deca=load_deca_from_config(resources, device),
        deca_input_size=int(resources["deca"]["input_size"]),
        emoca=emoca,
    )


class MediaReconstructor:
    """Crops, features and reconstructions of users' frames (see the module docstring).

    Args:
        config: the validated config (``preprocess``, ``resources``, ``render``, ``features``, ``device``).
        settings: method, mesh format, batch size, frame stride, checkpoint.
        device: where the networks run.
    """

    def __init__(self, config: Mapping[str, Any], settings: MediaSettings, device: torch.device) -> None:
        self.config = config
        self.settings = settings
        self.device = device
        self.crop = crop_settings(config["preprocess"])
        self.networks = load_networks(config, settings.method, device)
        runtime = replace(inference_settings(config), device=device, compile=False, batch_size=settings.batch_size)
        self.extractor = FeatureExtractor(self.networks, runtime)
        layout = network_layout(self.networks, self.crop.size)
        self.reconstructor = Reconstructor.from_config(
            config, settings.method, layout, device, checkpoint=settings.checkpoint, networks=self.networks.provenance()
        )
        self.au_names = [str(name) for name in self.networks.au_detector.au_labels]

    def cropper(self, video: bool) -> FaceCropper:
        """A face cropper with a fresh landmarker (tracking mode on videos when ``preprocess.video_tracking``)."""
        preprocess = self.config["preprocess"]
        landmarker = build_landmarker(preprocess, self.config["resources"].get("mediapipe_task"), video=video)
        return FaceCropper(landmarker, self.crop, min_face_size=float(preprocess["min_face_size"]),
                           detect_max_side=int(preprocess["detect_max_side"]))

    # --- one batch ------------------------------------------------------------------------

    def reconstruct(self, samples: list[FaceSample]) -> dict[str, np.ndarray]:
        """Reconstruct preprocessed samples (status ok) in one batch.

        Returns:
            numpy arrays per sample (leading axis B): ``finite`` (bool), DECA's ``shape``, ``tex``, ``light``
            (9, 3), the method's ``exp``, ``pose``, ``cam``, ``vertices`` (V, 3) metres, ``landmarks`` (105, 2)
            normalised crop coordinates, ``overlay`` (S, S, 3) uint8 render over the crop, ``mask`` (S, S),
            ``render`` (S, S, 3) uint8 render over the background colour, ``prob_input``/``prob_render`` (K,).
        """
        crops = np.stack([sample.image for sample in samples])
        features = self.extractor(crops)
        finite = features.finite()
        size = self.crop.size
        landmarks = np.stack([pixels_to_normalised(select_105(sample.mesh)[:, :2].astype(np.float64), size)
                              for sample in samples]).astype(np.float32)
        device = self.device

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.nan_to_num(np.asarray(array, dtype=np.float32))).to(device)

        params = split_deca_params(tensor(features.deca_params))
        batch: dict[str, Any] = {
            "image": torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float().div_(255.0),
            "landmarks_ndc": tensor(landmarks),
            "au_prob": tensor(features.au_prob),
            "afg": tensor(features.afg),
            "deca_feature": tensor(features.deca_feature),
            "deca_params": params,
        }
        if features.emoca_exp is not None:
            batch["emoca_exp"], batch["emoca_pose"] = tensor(features.emoca_exp), tensor(features.emoca_pose)
        result = self.reconstructor(batch)
        mask = result.render.mask[:, 0]
        background = torch.tensor(self.reconstructor.face.renderer.settings.background_color, device=mask.device)
        alone = torch.where(mask[:, None] > 0, result.render.image, background.view(1, 3, 1, 1))
        numpy = {name: value.float().cpu().numpy() for name, value in params.items() if name in ("shape", "tex", "light")}
        numpy.update({name: value.float().cpu().numpy() for name, value in result.params.items()})
        numpy.update(
            finite=finite,
            vertices=result.face.vertices.float().cpu().numpy(),
            landmarks=result.landmarks.float().cpu().numpy(),
            overlay=to_uint8(result.render.image),
            render=to_uint8(alone),
            mask=mask.float().cpu().numpy(),
            prob_input=np.asarray(features.au_prob, dtype=np.float32),
            prob_render=result.rendered_prob.float().cpu().numpy(),
        )
        return numpy

    # --- one source -----------------------------------------------------------------------

    def run_source(self, source: MediaSource, out_dir: Path) -> list[FrameRecord]:
        """Reconstruct every (strided) frame of one source into ``out_dir / source.name``."""
        folder = out_dir / source.name
        records: list[FrameRecord] = []
        if source.kind == "image":
            list(self._frames(source, folder, out_dir, records, video=False))  # images yield no video frames
            return records
        try:
            write_video(folder / SIDE_BY_SIDE, self._frames(source, folder, out_dir, records, video=True),
                        fps=self._fps(source))
        except ValueError as err:
            if any(record.status == "ok" for record in records):
                raise
            log.warning("%s: no side-by-side video written (%s)", source.path, err)
        return records

    def _fps(self, source: MediaSource) -> float:
        try:
            fps = probe_video(source.path).fps
        except DataError:
            fps = 0.0
        return (fps if fps > 0 else 25.0) / self.settings.frame_stride

    def _frames(
        self, source: MediaSource, folder: Path, out_dir: Path, records: list[FrameRecord], video: bool
    ) -> Iterator[np.ndarray]:
        """Process the frames of ``source``, appending to ``records``; yields side-by-side frames (videos)."""
        from tqdm import tqdm

        cropper = self.cropper(video)
        expected = frame_count(source)
        total = -(-expected // self.settings.frame_stride) if expected else None
        pending: list[_Pending] = []
        try:
            with tqdm(total=total, desc=source.name, unit="frame", disable=None, mininterval=1.0) as bar:
                for frame in iterate_frames(source, self.settings.frame_stride,
                                            int(self.config["preprocess"]["max_image_pixels"])):
                    pending.append(self._prepare(cropper, source, frame))
                    faces = sum(item.sample is not None for item in pending)
                    if faces >= self.settings.batch_size or len(pending) >= _QUEUE_FACTOR * self.settings.batch_size:
                        yield from self._flush(pending, source, folder, out_dir, records, video)
                        bar.update(len(pending))
                        pending = []
                if pending:
                    yield from self._flush(pending, source, folder, out_dir, records, video)
                    bar.update(len(pending))
        finally:
            cropper.landmarker.close()

    def _prepare(self, cropper: FaceCropper, source: MediaSource, frame: MediaFrame) -> _Pending:
        record = FrameRecord(str(source.path), source.name, source.kind, frame.index, frame.status, frame.detail)
        if frame.rgb is None:
            return _Pending(frame, None, record)
        try:
            sample = cropper.process(frame.rgb)
        except Exception as err:  # one bad frame must not stop the others; the traceback goes to the log
            log.exception("%s frame %d: unexpected error while finding the face", source.path, frame.index)
            record.status, record.detail = Status.FAILED.name.lower(), f"face detection failed: {err}"
            return _Pending(frame, None, record)
        if sample.status != Status.OK:
            record.status = sample.status.name.lower()
            record.detail = f"{sample.face_count} face(s) found" if sample.face_count else "no face found"
            return _Pending(frame, None, record)
        return _Pending(frame, sample, record)

    def _flush(
        self, pending: list[_Pending], source: MediaSource, folder: Path, out_dir: Path,
        records: list[FrameRecord], video: bool,
    ) -> Iterator[np.ndarray]:
        faces = [item for item in pending if item.sample is not None]
        if faces:
            outputs = self.reconstruct([item.sample for item in faces])
            for position, item in enumerate(faces):
                one = {name: value[position] for name, value in outputs.items()}
                if not one["finite"]:
                    item.record.status, item.record.detail = Status.FAILED.name.lower(), "network outputs are not finite"
                    continue
                self._write_frame(item, one, source, folder, out_dir, still=not video)
        for item in pending:
            records.append(item.record)
            if video and item.frame.rgb is not None:
                right = item.composite if item.composite is not None else labelled(item.frame.rgb, item.record.status)
                yield side_by_side(item.frame.rgb, right)

    def _write_frame(self, item: _Pending, one: Mapping[str, np.ndarray], source: MediaSource, folder: Path,
                     out_dir: Path, still: bool) -> None:
        sample, record = item.sample, item.record
        stem = folder / f"{item.frame.index:06d}"
        size = self.crop.size
        crop_points = normalised_to_pixels(one["landmarks"].astype(np.float64), size)
        files = {
            "params": _save_params(
                stem.with_suffix(".npz"),
                method=self.settings.method, source=str(source.path), frame=item.frame.index, crop_size=size,
                transform=sample.transform, source_size=np.asarray(sample.source_size),
                shape=one["shape"], tex=one["tex"], exp=one["exp"], pose=one["pose"], cam=one["cam"],
                light=one["light"], vertices=one["vertices"], landmarks105_crop=crop_points,
                landmarks105_source=apply_transform(crop_points, invert_transform(sample.transform)),
                au_names=np.asarray(self.au_names), au_prob_input=one["prob_input"], au_prob_render=one["prob_render"],
            ),
            "render": write_image(stem.with_name(stem.name + "_render.png"), one["render"]),
            "overlay": write_image(stem.with_name(stem.name + "_overlay.png"), one["overlay"]),
        }
        if self.settings.mesh is not None:
            mesh = stem.with_suffix(f".{self.settings.mesh}")
            write_mesh(mesh, one["vertices"], self.reconstructor.face.flame.faces.cpu().numpy())
            files["mesh"] = mesh
        item.composite = paste_back(item.frame.rgb, one["render"], one["mask"], sample.transform)
        if still:
            files["frame_overlay"] = write_image(stem.with_name(stem.name + "_frame.png"), item.composite)
        record.status = "ok"
        for name, path in files.items():
            setattr(record, name, Path(path).relative_to(out_dir).as_posix())


def _save_params(path: Path, **arrays: Any) -> Path:
    """``np.savez_compressed`` atomically (strings as unicode arrays, readable with ``allow_pickle=False``)."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **{name: np.asarray(value) for name, value in arrays.items()})
    return path


@dataclass
class MediaSummary:
    """What ``augane reconstruct`` did: per-frame records, per-source summaries and totals."""

    records: list[FrameRecord]
    sources: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def reconstructed(self) -> int:
        return sum(record.status == "ok" for record in self.records)


def _source_summary(source: MediaSource, records: list[FrameRecord], out_dir: Path) -> dict[str, Any]:
    statuses = Counter(record.status for record in records)
    video = out_dir / source.name / SIDE_BY_SIDE
    entry = {"path": str(source.path), "kind": source.kind, "name": source.name, "frames": len(records),
             "reconstructed": statuses.get("ok", 0), "statuses": dict(sorted(statuses.items())),
             "video": video.relative_to(out_dir).as_posix() if video.is_file() else None}
    if not statuses.get("ok"):
        entry["problem"] = _why_nothing(source, records)
    return entry


def _why_nothing(source: MediaSource, records: list[FrameRecord]) -> str:
    """One sentence on why no frame of ``source`` was reconstructed."""
    if not records:
        return f"{source.path}: no frame could be read"
    first = records[0]
    if len(records) == 1 and first.status in ("unreadable", "corrupt", "missing", "too_large"):
        return f"{source.path}: {first.detail or first.status}"
    statuses = Counter(record.status for record in records)
    listed = ", ".join(f"{count} {status}" for status, count in statuses.most_common())
    if set(statuses) <= {"no_face", "no_mesh", "too_small"}:
        return f"{source.path}: no usable face in any of its {len(records)} frame(s) ({listed})"
    return f"{source.path}: none of its {len(records)} frame(s) could be reconstructed ({listed})"


def reconstruct_media(
    input_path: str | Path,
    out_dir: str | Path,
    config: Mapping[str, Any],
    settings: MediaSettings,
    device: torch.device,
) -> MediaSummary:
    """Reconstruct an image, a folder or a video into ``out_dir`` (see the module docstring).

    Raises:
        DataError: the input does not exist or holds no media, or no frame at all could be reconstructed
            (after ``frames.csv`` and ``summary.json`` were written).
        ConfigError, CheckpointError, AssetError: a network, checkpoint or face model is missing or does not fit.
    """
    out_dir = Path(out_dir)
    sources = list_sources(input_path)
    started = time.perf_counter()
    engine = MediaReconstructor(config, settings, device)
    loaded = time.perf_counter()
    records: list[FrameRecord] = []
    summaries = []
    for source in sources:
        part = engine.run_source(source, out_dir)
        records.extend(part)
        summaries.append(_source_summary(source, part, out_dir))
        problem = summaries[-1].get("problem")
        if problem:
            log.warning("%s", problem)
    seconds = time.perf_counter() - loaded
    result = MediaSummary(records, summaries)
    statuses = Counter(record.status for record in records)
    networks = engine.networks.provenance()
    checkpoint = engine.reconstructor.checkpoint
    result.summary = {
        "input": str(input_path),
        "method": settings.method,
        "checkpoint": str(checkpoint.path) if checkpoint else None,
        "settings": {**asdict(settings), "checkpoint": str(settings.checkpoint) if settings.checkpoint else None},
        "device": str(device),
        "networks": networks,
        "untrained": {
            "networks": engine.networks.untrained,
            "gane_training_features": bool(checkpoint is not None and any(
                (entry or {}).get("untrained_weights") for entry in checkpoint.cache_networks.values())),
        },
        "frames": len(records),
        "reconstructed": result.reconstructed,
        "statuses": dict(sorted(statuses.items())),
        "sources": summaries,
        "seconds_loading": round(loaded - started, 3),
        "seconds": round(seconds, 3),
        "frames_per_second": round(len(records) / seconds, 3) if seconds > 0 and records else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([asdict(record) for record in records], columns=list(FrameRecord.__dataclass_fields__))
    write_text_atomic(out_dir / "frames.csv", table.to_csv(index=False))
    write_text_atomic(out_dir / "summary.json", json.dumps(result.summary, indent=2) + "\n")
    if result.reconstructed == 0:
        reasons = "; ".join(entry["problem"] for entry in summaries)
        raise DataError(f"nothing was reconstructed from {input_path}: {reasons} (per-frame statuses in "
                        f"{out_dir / 'frames.csv'})")
    return result
