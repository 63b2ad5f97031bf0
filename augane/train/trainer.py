"""The training loop of ``augane train``: GANE on the cached features with the AU-based losses.

One run writes to ``results/train/<run_name>/`` (:class:`RunPaths`)::

    config.json               the resolved config
    checkpoints/last.pt       the latest state (resume point): weights, optimiser, random states, progress
    checkpoints/best.pt       the state with the lowest validation loss (GANE's weighted objective)
    train_steps.csv           loss terms of every step          (see augane.train.records)
    validation.csv            validation metrics, GANE and DECA (see augane.train.metrics)
    loss_curves.png           both, plotted after every epoch and at the end
    summary.json              final and best validation metrics, GANE next to DECA
    tensorboard/              the same scalars for TensorBoard

Adam (``train.lr``) over GANE's parameters only; the AU detector, FLAME, the
albedo model and the renderer have none that train. Steps take global
batches of ``train.batch_size`` split across the processes of a torchrun
launch (:mod:`augane.train.distributed`). Validation after every epoch (and
at the end) runs on every process and combines the sums.

Resuming: when ``last.pt`` exists (or with ``--resume``) the run continues
from it — weights, Adam's state, the position in the epoch and every
process's random states — provided the settings that shape training
(:func:`resume_digest`: model, losses, render, resources, seed, the
``train:`` settings other than the length of the run, and the cache's index
files) are unchanged; otherwise it starts again (or, with ``--resume``,
stops with an error). A run stopped by SIGTERM/SIGINT (e.g. a cluster
preemption) writes ``last.pt`` at the next step boundary first. On CPU with
a fixed seed a resumed run ends with the same weights as an uninterrupted
one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from augane.config import digest
from augane.errors import AuganeError, CheckpointError, ConfigError, DataError
from augane.features.runtime import resolve_device
from augane.io.atomic import write_text_atomic
from augane.io.shards import open_store
from augane.model import GANE
from augane.train.checkpoint import (
    capture_rng_state,
    code_version,
    layout_to_dict,
    metadata_from_content,
    read_gane_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from augane.train.curves import write_loss_curves
from augane.train.dataset import CACHE_ROOT, CachedShardDataset, ShardBatchSampler, move_to
from augane.train.distributed import ProcessGroup, RankBatchSampler, RankPart
from augane.train.face import FaceDecoder
from augane.train.metrics import MetricTotals, sample_metrics
from augane.train.objective import TERM_NAMES, AuObjective, LossSettings, TrainingStep, deca_estimate
from augane.train.records import RunRecords

log = logging.getLogger(__name__)

#: ``train:`` keys that only say how long or how verbosely to run; changing them keeps a run resumable.
RUN_LENGTH_KEYS = ("epochs", "max_steps", "num_workers", "log_every", "checkpoint_every", "tensorboard", "gpus",
                   "val_batch_size")
#: Consecutive steps with a non-finite gradient after which training stops.
MAX_NONFINITE_STEPS = 10


class TrainingInterrupted(AuganeError):
    """Training stopped on a signal after writing ``last.pt``."""


@dataclass(frozen=True)
class RunPaths:
    """The files of one training run under ``root`` (``results/train/<run_name>``)."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def steps_csv(self) -> Path:
        return self.root / "train_steps.csv"

    @property
    def validation_csv(self) -> Path:
        return self.root / "validation.csv"

    @property
    def curves(self) -> Path:
        return self.root / "loss_curves.png"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @classmethod
    def for_config(cls, config: Mapping[str, Any], out_dir: str | Path | None = None) -> RunPaths:
        """``out_dir``, or ``results/train/<run_name>``."""
        return cls(Path(out_dir) if out_dir is not None else Path("results") / "train" / config["run_name"])


@dataclass
class Progress:
    """Where training stands.

    Attributes:
        epoch: the current epoch (0-based); equals the number of finished epochs when ``batch_in_epoch`` is 0.
        batch_in_epoch: global batches of the current epoch already trained on.
        step: optimiser steps taken in all.
        best_value: lowest validation loss so far (None before any validation).
        best_step: the step it was measured at.
        finished: whether the configured length (epochs, max_steps) was reached.
    """

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    finished: bool = False


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


def resume_digest(config: Mapping[str, Any], cache_root: Path) -> str:
    """Digest of what a checkpoint must share with a run to be resumed by it.

    The sections that shape training (``model``, ``losses``, ``render``,
    ``resources``, ``seed``, ``train`` without :data:`RUN_LENGTH_KEYS`) and
    the index files of the cached datasets (recomputed features change them).
    """
    train = {key: value for key, value in config["train"].items() if key not in RUN_LENGTH_KEYS}
    caches = {
        name: [_file_digest(cache_root / name / "index.parquet"), _file_digest(cache_root / name / "features.parquet")]
        for name in [*config["train"]["datasets"], *config["train"]["val_datasets"]]
    }
    sections = {name: config.get(name) for name in ("model", "losses", "render", "resources", "seed")}
    return digest({**sections, "train": train, "caches": caches})


def cache_networks(dataset: CachedShardDataset) -> dict[str, Any]:
    """The feature stage's network provenance (``networks`` store attribute) of each dataset's first shard."""
    found: dict[str, Any] = {}
    for name, folder in dataset.first_shard_dirs().items():
        store = open_store(folder / "features.zarr")
        found[name] = {"networks": store.attrs.get("networks"),
                       "untrained_weights": bool(store.attrs.get("untrained_weights", False))}
    return found


class StopSignal:
    """Turns SIGTERM/SIGINT into a flag checked between steps (handlers restored by :meth:`close`)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        for number in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread (e.g. a test runner thread): no handler
                pass

    def _handle(self, number: int, frame: Any) -> None:
        self.received = signal.Signals(number).name
        log.warning("received %s: stopping after the current step and writing last.pt", self.received)

    def close(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class Trainer:
    """Trains GANE as the config says (see the module docstring).

    Args:
        config: the validated config.
        paths: where the run writes.
        group: this process's place in data-parallel training.
        cache_root: where the cached datasets live.
        resume: ``"auto"`` (resume a compatible ``last.pt``), ``"always"`` (it must exist and be
            compatible) or ``"never"`` (start again, replacing the run's outputs).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        paths: RunPaths,
        group: ProcessGroup,
        *,
        cache_root: str | Path = CACHE_ROOT,
        resume: str = "auto",
    ) -> None:
        if resume not in ("auto", "always", "never"):
            raise ValueError(f"resume must be auto, always or never, got {resume!r}")
        self.config = copy.deepcopy(dict(config))
        self.paths = paths
        self.group = group
        self.device = group.device
        self.cache_root = Path(cache_root)
        self.settings = self.config["train"]
        self.seed = int(self.config["seed"])
        self.started = time.perf_counter()
        _seed_everything(self.seed)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        self.train_set = self._training_set()
        self.layout = self.train_set.layout
        self.val_set = self._validation_set()
        self.cache_networks = cache_networks(self.train_set)
        sizes = dict(self.layout.param_layout)
        missing = [name for name in ("shape", "tex", "light") if name not in sizes]
        if missing:
            raise DataError(f"the cached DECA parameters (layout {sizes}) lack {missing}, which training renders with")
        self.face = FaceDecoder.from_config(
            self.config, self.layout.image_size, shape_dim=sizes["shape"], expression_dim=sizes["exp"],
            tex_dim=sizes["tex"],
        ).to(self.device)
        from augane.features.networks import frozen_au_detector_from_config

        detector = frozen_au_detector_from_config(self.config["resources"], self.device)
        self.untrained_networks = bool(detector.detector.checkpoint_info and detector.detector.checkpoint_info.untrained)
        self.untrained_networks |= any(entry["untrained_weights"] for entry in self.cache_networks.values())
        if self.untrained_networks:
            log.warning("training on features or with an AU detector from UNTRAINED development weights: the "
                        "losses exercise the pipeline but the trained GANE is meaningless")
        bf16 = bool(self.settings["bf16"])
        self.loss_settings = LossSettings.from_config(self.config)
        self.objective = AuObjective(self.face, detector, self.layout, self.loss_settings, bf16=bf16,
                                     rigid_feature_gradients=bool(self.settings["au_feature_rigid_gradients"]))

        torch.manual_seed(self.seed)  # the same initial weights on every rank and for any process count
        self.gane = GANE.from_config(self.config["model"], self.layout.num_aus, self.layout.node_dim,
                                     self.layout.global_dim, expression_dim=sizes["exp"]).to(self.device)
        self.optimizer = torch.optim.Adam(self.gane.parameters(), lr=float(self.settings["lr"]))
        self.progress = Progress()
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_metrics: dict[str, Any] = {}
        self.last_metrics: dict[str, Any] = {}
        self.deca_metrics: dict[str, float] | None = None
        self.digest = resume_digest(self.config, self.cache_root)
        restored = self._resume(resume)
        if restored is None:
            _seed_everything(int(np.random.SeedSequence([self.seed, self.group.rank]).generate_state(1)[0]))
        model: torch.nn.Module = self.gane
        if group.distributed:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(self.gane, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.step_module = TrainingStep(model, self.objective, bf16=bf16)
        self.eval_step = TrainingStep(self.gane, self.objective, bf16=bf16)

        batches = ShardBatchSampler(self.train_set, int(self.settings["batch_size"]), shuffle=True, seed=self.seed)
        self.sampler = RankBatchSampler(batches, group.world_size, group.rank)
        self.val_sampler = None
        if self.val_set is not None:
            val_batch = int(self.settings["val_batch_size"] or self.settings["batch_size"])
            self.val_sampler = RankBatchSampler(ShardBatchSampler(self.val_set, val_batch, shuffle=False),
                                                group.world_size, group.rank)
        self.records: RunRecords | None = None
        if group.is_main:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.paths.config, json.dumps(self.config, indent=2, sort_keys=True, default=str))
            if restored is None:  # a new run replaces what an earlier one left
                for stale in (self.paths.last, self.paths.best, self.paths.summary, self.paths.curves):
                    stale.unlink(missing_ok=True)
                shutil.rmtree(self.paths.tensorboard, ignore_errors=True)
            self.records = RunRecords(self.paths.steps_csv, self.paths.validation_csv,
                                      self.paths.tensorboard if self.settings["tensorboard"] else None,
                                      resume_step=None if restored is None else self.progress.step)
        if restored is not None:
            restore_rng_state(restored[min(self.group.rank, len(restored) - 1)])
        group.barrier()

    # --- setup ---------------------------------------------------------------------------

    def _training_set(self) -> CachedShardDataset:
        """``train.datasets``: whole when ``val_datasets`` are given, else without the held-out share."""
        if not self.settings["val_datasets"]:
            return CachedShardDataset.from_config(self.config, "train", cache_root=self.cache_root)
        declared = self.config.get("datasets", {})
        names, held_out = list(self.settings["datasets"]), list(self.settings["val_datasets"])
        for key, listed in (("train.datasets", names), ("train.val_datasets", held_out)):
            unknown = [name for name in listed if name not in declared]
            if unknown:
                raise ConfigError(f"{key} names {unknown}, which are not declared under datasets: ({sorted(declared)})")
        shared = sorted(set(names) & set(held_out))
        if shared:
            raise ConfigError(f"train.val_datasets {shared} are also in train.datasets: validation data must not "
                              "be trained on")
        if not names:
            raise ConfigError("train.datasets is empty: name at least one dataset declared under datasets:")
        return CachedShardDataset(names, cache_root=self.cache_root, subset="all")

    def _validation_set(self) -> CachedShardDataset | None:
        """``train.val_datasets`` whole, or the held-out share of ``train.datasets``; None without either."""
        if self.settings["val_datasets"]:
            val_set = CachedShardDataset(list(self.settings["val_datasets"]), cache_root=self.cache_root, subset="all")
        elif float(self.settings["val_fraction"]) <= 0:
            log.warning("train.val_fraction is 0 and train.val_datasets is empty: no validation; best.pt is the "
                        "last state")
            return None
        else:
            try:
                val_set = CachedShardDataset.from_config(self.config, "val", cache_root=self.cache_root)
            except DataError as err:
                log.warning("no validation samples (%s); best.pt is the last state", err)
                return None
        if val_set.layout != self.layout:
            raise DataError(f"validation and training samples are cached with different layouts "
                            f"({val_set.layout} vs {self.layout})")
        return val_set

    def _resume(self, mode: str) -> list[dict[str, Any]] | None:
        """Load ``last.pt`` when it fits (see the module docstring); returns the saved random states, or None."""
        path = self.paths.last
        if mode == "never" or not path.is_file():
            if mode == "always":
                raise CheckpointError(f"--resume: {path} does not exist; nothing to resume")
            return None
        try:
            content = read_gane_checkpoint(path)
            training = content["training"]
            if training.get("resume_digest") != self.digest:
                raise CheckpointError(
                    f"{path} was written with other training settings or another cache (model, losses, render, "
                    "resources, seed, train settings besides the run length, or the cached features changed)"
                )
            metadata_from_content(path, content).check_layout(self.layout)
            if content.get("optimizer") is None:
                raise CheckpointError(f"{path} holds no optimiser state")
            self.gane.load_state_dict(content["state_dict"])
            self.optimizer.load_state_dict(content["optimizer"])
        except (CheckpointError, RuntimeError, ValueError, KeyError) as err:
            if mode == "always":
                raise CheckpointError(f"--resume: cannot resume from {path}: {err}") from err
            log.warning("not resuming from %s (%s); starting a new run", path, err)
            self.gane.load_state_dict(self._initial_state())
            self.optimizer = torch.optim.Adam(self.gane.parameters(), lr=float(self.settings["lr"]))
            return None
        self.progress = Progress(**{key: training[key] for key in asdict(Progress()) if key in training})
        best_state = content.get("best_state_dict")
        self.best_state = dict(best_state) if best_state else None
        self.best_metrics = dict(content.get("best_metrics") or {})
        rng = list(content.get("rng") or [])
        if len(rng) != self.group.world_size:
            log.warning("%s was written by %d processes, this run has %d: random states are reseeded, so the run "
                        "continues correctly but not bit-for-bit as an uninterrupted one", path, len(rng),
                        self.group.world_size)
            rng = [capture_rng_state()] if not rng else rng
        log.info("resuming from %s: epoch %d, batch %d of the epoch, step %d", path, self.progress.epoch,
                 self.progress.batch_in_epoch, self.progress.step)
        return rng

    def _initial_state(self) -> dict[str, torch.Tensor]:
        torch.manual_seed(self.seed)
        sizes = dict(self.layout.param_layout)
        fresh = GANE.from_config(self.config["model"], self.layout.num_aus, self.layout.node_dim,
                                 self.layout.global_dim, expression_dim=sizes["exp"])
        return fresh.state_dict()

    def _loader(self, dataset: CachedShardDataset, sampler: RankBatchSampler, seed: int) -> DataLoader:
        workers = int(self.settings["num_workers"])
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(seed),  # leaves the global random state alone
            multiprocessing_context="fork" if workers and sys.platform.startswith("linux") else None,
        )

    # --- the loop ------------------------------------------------------------------------

    @property
    def epochs(self) -> int:
        return int(self.settings["epochs"])

    @property
    def max_steps(self) -> int | None:
        value = self.settings["max_steps"]
        return int(value) if value is not None else None

    def planned_steps(self) -> int:
        total = self.epochs * len(self.sampler)
        return min(total, self.max_steps) if self.max_steps is not None else total

    def _done(self) -> bool:
        return self.progress.epoch >= self.epochs or (self.max_steps is not None and self.progress.step >= self.max_steps)

    def run(self) -> dict[str, Any]:
        """Train until the configured length, validate, write the outputs; returns the summary (on every rank)."""
        stop = StopSignal()
        progress_bar = self._progress_bar()
        nonfinite = 0
        pending: list[tuple[int, int, torch.Tensor]] = []
        try:
            while not self._done():
                epoch = self.progress.epoch
                self.sampler.set_epoch(epoch)
                self.sampler.set_start(self.progress.batch_in_epoch)
                parts = self.sampler.parts()
                loader = self._loader(self.train_set, self.sampler, self.seed * 1_000_003 + epoch)
                self.gane.train()
                interrupted = False
                for batch in loader:
                    part = parts[self.progress.batch_in_epoch]
                    values, finite = self._train_step(batch, part)
                    nonfinite = 0 if finite else nonfinite + 1
                    if nonfinite >= MAX_NONFINITE_STEPS:
                        raise DataError(
                            f"{nonfinite} consecutive steps had a non-finite gradient (last at step "
                            f"{self.progress.step}); lower train.lr, set train.grad_clip, or check the cached features"
                        )
                    self.progress.batch_in_epoch += 1
                    self.progress.step += 1
                    pending.append((self.progress.step, epoch, values))
                    progress_bar.update(1)
                    if len(pending) >= int(self.settings["log_every"]):
                        self._flush(pending, progress_bar)
                    every = int(self.settings["checkpoint_every"])
                    if every and self.progress.step % every == 0:
                        self._flush(pending, progress_bar)
                        self._save_last()
                    if self.group.any(stop.received is not None):
                        interrupted = True
                        break
                    if self.max_steps is not None and self.progress.step >= self.max_steps:
                        break
                self._flush(pending, progress_bar)
                if interrupted:
                    self._save_last()
                    self._write_curves()
                    raise TrainingInterrupted(
                        f"training stopped by {stop.received or 'a signal on another process'} at step "
                        f"{self.progress.step}; {self.paths.last} was written: run the same command again to resume"
                    )
                if self.progress.batch_in_epoch >= len(self.sampler):
                    self.progress.epoch += 1
                    self.progress.batch_in_epoch = 0
                    self._validate_and_save()
            self.progress.finished = True
            if self.last_metrics.get("step") != self.progress.step:
                self._validate_and_save()
            else:
                self._save_last()
            return self._finish()
        finally:
            progress_bar.close()
            stop.close()
            if self.records is not None:
                self.records.close()

    def _progress_bar(self):
        from tqdm import tqdm

        return tqdm(
            total=self.planned_steps(), initial=self.progress.step, disable=not self.group.is_main,
            desc=f"train {self.config['run_name']}", unit="step", dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )

    def _train_step(self, batch: Mapping[str, Any], part: RankPart) -> tuple[torch.Tensor, bool]:
        """One optimiser step; returns this rank's share of the logged values and whether the gradient was finite."""
        batch = move_to(batch, self.device)
        result = self.step_module(batch)
        (result.total * part.loss_scale(self.group.world_size)).backward()
        clip = self.settings["grad_clip"]
        grad_norm = torch.nn.utils.clip_grad_norm_(self.gane.parameters(), float(clip) if clip else math.inf)
        finite = bool(torch.isfinite(grad_norm))  # identical on every rank after the gradient all-reduce
        if finite:
            self.optimizer.step()
        else:
            log.warning("step %d: non-finite gradient; the update is skipped", self.progress.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        share = part.size / part.global_size
        nan = torch.tensor(float("nan"), device=self.device)
        values = torch.stack([
            torch.tensor(float(part.size), device=self.device),
            result.total.detach().float() * share,
            *[result.terms[name].detach().float() * share if name in result.terms else nan for name in TERM_NAMES],
            grad_norm.detach().float() / self.group.world_size,
        ])
        return values, finite

    def _flush(self, pending: list[tuple[int, int, torch.Tensor]], progress_bar) -> None:
        """Combine the pending steps' values over the ranks and write them (rank 0)."""
        if not pending:
            return
        stacked = self.group.all_reduce_sum(torch.stack([values for _, _, values in pending]).double())
        elapsed = time.perf_counter() - self.started
        lr = self.optimizer.param_groups[0]["lr"]
        rows = []
        for (step, epoch, _), values in zip(pending, stacked.tolist()):
            samples, total, *terms, grad_norm = values
            row = {"step": step, "epoch": epoch, "samples": int(samples), "lr": lr, "grad_norm": grad_norm,
                   "loss": total, "seconds": round(elapsed, 3)}
            row.update({name: (None if math.isnan(value) else value) for name, value in zip(TERM_NAMES, terms)})
            rows.append(row)
        pending.clear()
        if self.records is not None:
            self.records.log_steps(rows)
            last = rows[-1]
            progress_bar.set_postfix(loss=f"{last['loss']:.4g}", epoch=last["epoch"])
            log.info("step %d (epoch %d): loss %.5g | %s", last["step"], last["epoch"] + 1, last["loss"],
                     " ".join(f"{name} {last[name]:.4g}" for name in TERM_NAMES if last.get(name) is not None))

    # --- validation, checkpoints, outputs -------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, dict[str, float]]:
        """Validation metrics of GANE (and, once per process, of DECA's estimate), combined over the ranks."""
        if self.val_set is None or self.val_sampler is None:
            return {}
        self.gane.eval()
        methods = ["gane"] + (["deca"] if self.deca_metrics is None else [])
        totals = {method: MetricTotals() for method in methods}
        threshold = self.loss_settings.threshold
        self.val_sampler.set_epoch(0)
        parts = self.val_sampler.parts()
        for part, batch in zip(parts, self._loader(self.val_set, self.val_sampler, self.seed)):
            batch = move_to(batch, self.device)
            for method in methods:
                if method == "gane":
                    result = self.eval_step(batch, render=True)
                else:
                    result = self.objective(deca_estimate(batch), batch, render=True)
                totals[method].add_means({**result.terms, "loss": result.total}, part.size)
                totals[method].add_samples(sample_metrics(self.face, result, batch, threshold), part.size)
        self.gane.train()
        names = sorted({name for total in totals.values() for name in total.names()})
        names = sorted(set().union(*self.group.gather_objects(names)))
        metrics = {}
        for method, total in totals.items():
            metrics[method] = MetricTotals.means(names, self.group.all_reduce_sum(total.as_tensor(names)))
        if "deca" in metrics:
            self.deca_metrics = metrics["deca"]
        metrics.setdefault("deca", self.deca_metrics or {})
        return metrics

    def _validate_and_save(self) -> None:
        metrics = self.validate()
        step, epoch = self.progress.step, self.progress.epoch
        self.last_metrics = {"step": step, **metrics}
        improved = False
        if metrics.get("gane"):
            value = metrics["gane"]["loss"]
            if self.progress.best_value is None or value < self.progress.best_value:
                self.progress.best_value, self.progress.best_step = value, step
                improved = True
            if self.records is not None:
                self.records.log_validation(step, epoch, metrics)
            log.info("validation at step %d: %s", step, _describe(metrics))
        else:
            self.progress.best_value, self.progress.best_step, improved = None, step, True
        if improved:
            self.best_state = {name: value.detach().cpu().clone() for name, value in self.gane.state_dict().items()}
            self.best_metrics = copy.deepcopy(self.last_metrics)
        rng = self.group.gather_objects(capture_rng_state())
        if self.group.is_main:
            self._write_checkpoint(self.paths.last, rng, self.last_metrics)
            if improved or not self.paths.best.is_file():
                self._write_best(rng)
        self._write_curves()
        self.group.barrier()

    def _save_last(self) -> None:
        rng = self.group.gather_objects(capture_rng_state())
        if self.group.is_main:
            self._write_checkpoint(self.paths.last, rng, self.last_metrics)
        self.group.barrier()

    def _training_entry(self) -> dict[str, Any]:
        return {**asdict(self.progress), "world_size": self.group.world_size, "resume_digest": self.digest,
                "best_metric": "validation loss (the weighted training objective)"}

    def _write_checkpoint(self, path: Path, rng: list[dict[str, Any]], metrics: Mapping[str, Any]) -> None:
        extra = None
        if path == self.paths.last and self.best_state is not None:
            extra = {"best_state_dict": self.best_state, "best_metrics": copy.deepcopy(self.best_metrics)}
        save_checkpoint(
            path, self.gane, model_section=self.config["model"], layout=self.layout, config=self.config,
            training=self._training_entry(), optimizer=self.optimizer, rng_states=rng, metrics=metrics,
            cache_networks=self.cache_networks, extra=extra,
        )

    def _write_best(self, rng: list[dict[str, Any]]) -> None:
        """best.pt: the best weights with the current optimiser and random states (resuming uses last.pt)."""
        current = {name: value.detach().clone() for name, value in self.gane.state_dict().items()}
        if self.best_state is not None:
            self.gane.load_state_dict(self.best_state)
        try:
            self._write_checkpoint(self.paths.best, rng, self.best_metrics)
        finally:
            self.gane.load_state_dict(current)

    def _write_curves(self) -> None:
        if self.group.is_main:
            write_loss_curves(self.paths.steps_csv, self.paths.validation_csv, self.paths.curves,
                              title=f"AUGANE training: {self.config['run_name']}")

    def _finish(self) -> dict[str, Any]:
        summary = self.summary()
        if self.group.is_main:
            write_text_atomic(self.paths.summary, json.dumps(summary, indent=2, default=str))
            self._write_curves()
            log.info("training done after %d steps: %s", self.progress.step, _describe(self.last_metrics))
        self.group.barrier()
        return summary

    def summary(self) -> dict[str, Any]:
        """The run at a glance: progress, final and best validation metrics with DECA's, outputs."""
        final = {key: value for key, value in self.last_metrics.items() if key != "step"}
        return {
            "run": self.config["run_name"],
            "finished": self.progress.finished,
            "epochs": self.progress.epoch,
            "steps": self.progress.step,
            "train_samples": len(self.train_set),
            "validation_samples": 0 if self.val_set is None else len(self.val_set),
            "processes": self.group.world_size,
            "device": self.device.type,
            "precision": "bf16" if self.settings["bf16"] and self.device.type == "cuda" else "fp32",
            "untrained_networks": self.untrained_networks,
            "final_validation": {"step": self.last_metrics.get("step"), **final,
                                 "gane_minus_deca": _differences(final)},
            "best": {"step": self.progress.best_step, "loss": self.progress.best_value,
                     **{k: v for k, v in self.best_metrics.items() if k != "step"}},
            "cache_layout": layout_to_dict(self.layout),
            "code": code_version(),
            "seconds": round(time.perf_counter() - self.started, 1),
            "outputs": {name: str(getattr(self.paths, name)) for name in
                        ("best", "last", "steps_csv", "validation_csv", "curves", "config")},
        }


def _differences(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    gane, deca = metrics.get("gane") or {}, metrics.get("deca") or {}
    return {name: gane[name] - deca[name] for name in sorted(set(gane) & set(deca))}


def _describe(metrics: Mapping[str, Any]) -> str:
    parts = []
    for method in ("gane", "deca"):
        values = metrics.get(method) or {}
        shown = [f"{name} {values[name]:.4g}" for name in ("loss", "landmark_nme", "au_feature", "expression_error",
                                                              "vertex_error_mm") if name in values]
        if shown:
            parts.append(f"{method.upper()} " + ", ".join(shown))
    return "; ".join(parts) or "no validation"


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train_gane(
    config: Mapping[str, Any],
    *,
    out_dir: str | Path | None = None,
    cache_root: str | Path = CACHE_ROOT,
    resume: str = "auto",
) -> dict[str, Any]:
    """Train GANE as ``config`` says, in this process or as one rank of a torchrun launch.

    Args:
        config: the validated config.
        out_dir: the run folder (default ``results/train/<run_name>``).
        cache_root: where the cached datasets live (default ``results/cache``).
        resume: ``auto``, ``always`` or ``never`` (see :class:`Trainer`).
    Returns:
        The run summary (also written to ``summary.json``).
    """
    if config["device"] == "cpu" and config["train"]["bf16"]:
        log.debug("bf16 autocast applies on CUDA only; this run is float32")
    device = resolve_device(config["device"])
    group = ProcessGroup.from_environment(device)
    try:
        if group.distributed and int(config["train"]["batch_size"]) < group.world_size:
            raise ConfigError(f"train.batch_size {config['train']['batch_size']} is smaller than the "
                              f"{group.world_size} training processes: every process needs a part of each batch")
        trainer = Trainer(config, RunPaths.for_config(config, out_dir), group, cache_root=cache_root, resume=resume)
        return trainer.run()
    finally:
        group.close()
