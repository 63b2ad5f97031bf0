# Shared helpers of the AUGANE workflow: config validation, the resolved
# config every rule passes to the `augane` command, and target lists.

import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from augane.config import digest


validate(config, schema="../schemas/config.schema.yaml")


def _write_if_changed(path, text):
    """Write ``text`` to ``path`` atomically unless it already holds it."""
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _write_resolved_config():
    """Write the validated config (defaults filled, overrides applied).

    Rules read results/config/config.json, a stable name passed in their
    `params` (as `config=RESOLVED_CONFIG`, used as `--config {params.config:q}`):
    the name never changes, so it triggers no rerun by itself; each rule's
    `settings(...)` param reruns it when the sections it reads change. A copy
    under a content-addressed name keeps every config that was run."""
    text = json.dumps(config, indent=2, sort_keys=True)
    folder = Path("results") / "config"
    _write_if_changed(folder / f"config-{digest(config)}.json", text)
    _write_if_changed(folder / "config.json", text)
    return str(folder / "config.json")


RESOLVED_CONFIG = _write_resolved_config()


def settings(*sections):
    """Digest of the named config sections: a rule's params, so that it reruns
    when (and only when) the settings it reads change."""
    return digest({name: config.get(name) for name in sections})


# Each stage file registers a function returning its final outputs; `rule all`
# asks for all of them.
FINAL_TARGETS = []


def all_targets(wildcards):
    """Every final output of the workflow for the current config."""
    return [path for function in FINAL_TARGETS for path in function(wildcards)]


# The `augane` command that rules call is the one installed beside the Python
# running this workflow (the project's .venv), whether or not it is activated.
os.environ.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


# --- datasets and the preprocessing cache --------------------------------------------
# results/cache/<dataset>/manifest.parquet is written by the checkpoint `manifest`
# (the number of shards depends on the data); every later stage asks for its
# shards with shards_of(dataset).

wildcard_constraints:
    dataset="[A-Za-z0-9_-]+",
    shard="[0-9]{4}",


def dataset_names():
    """Names of the datasets in the config, in config order."""
    return list(config.get("datasets", {}))


def cache_dir(dataset):
    """results/cache/<dataset>"""
    return f"results/cache/{dataset}"


def manifest_path(dataset):
    """The manifest of a dataset (output of the checkpoint `manifest`)."""
    return f"{cache_dir(dataset)}/manifest.parquet"


def preprocess_store(dataset, shard):
    """The preprocess Zarr store of one shard (shard given as its 4-digit name)."""
    return f"{cache_dir(dataset)}/shard-{shard}/preprocess.zarr"


def shards_of(dataset):
    """4-digit names of a dataset's shards, read from its manifest (evaluates the
    checkpoint `manifest`, so call it from input functions only)."""
    from augane.io.manifest import manifest_shard_count, shard_name

    manifest = checkpoints.manifest.get(dataset=dataset).output.manifest
    return [shard_name(shard) for shard in range(manifest_shard_count(manifest))]


def dataset_sources(wildcards):
    """The files or folders a dataset is read from: inputs of its manifest, so
    that a rule producing them (e.g. `samples`, the demo world) runs first.
    Paths outside results/ are the user's data and must exist: a missing one
    fails here, naming the config key."""
    dataset = config["datasets"][wildcards.dataset]
    paths = [dataset["path"]] if isinstance(dataset["path"], str) else list(dataset["path"])
    keys = [f"datasets.{wildcards.dataset}.path"] * len(paths)
    if dataset.get("labels"):
        paths.append(dataset["labels"])
        keys.append(f"datasets.{wildcards.dataset}.labels")
    for key, path in zip(keys, paths):
        produced = Path(path).parts[:1] == ("results",)
        if not produced and not Path(path).exists():
            raise WorkflowError(f"{key}: {path} does not exist (expected the dataset's {dataset['type']} data)")
    return paths


def dataset_settings(wildcards):
    """Digest of a dataset's config and the shard size: a manifest's params."""
    return digest(
        {
            "dataset": config["datasets"][wildcards.dataset],
            "shard_size": config["preprocess"]["shard_size"],
        }
    )


def mediapipe_task_input(wildcards):
    """The configured MediaPipe .task file, if any (an input of preprocessing)."""
    task = config["resources"].get("mediapipe_task")
    return [task] if task else []


def preprocess_stores(wildcards):
    """Every preprocess store of a dataset (input of `preprocess_gather`)."""
    return [preprocess_store(wildcards.dataset, shard) for shard in shards_of(wildcards.dataset)]


def preprocess_indexes(wildcards):
    """index.parquet of every configured dataset."""
    return [f"{cache_dir(dataset)}/index.parquet" for dataset in dataset_names()]


# --- the features stage -------------------------------------------------------------


def feature_checkpoints(wildcards):
    """The configured network checkpoints: inputs of `features_shard`, so that a
    rule producing them (the demo world, `untrained_dev_weights`) runs first."""
    resources = config["resources"]
    paths = [resources["au_detector"]["checkpoint"], resources["deca"]["checkpoint"]]
    if resources["emoca"].get("checkpoint"):
        paths.append(resources["emoca"]["checkpoint"])
    return paths


def features_stores(wildcards):
    """Every features store of a dataset (input of `features_gather`)."""
    return [f"{cache_dir(wildcards.dataset)}/shard-{shard}/features.zarr" for shard in shards_of(wildcards.dataset)]


def features_tables(wildcards):
    """features.parquet of every configured dataset."""
    return [f"{cache_dir(dataset)}/features.parquet" for dataset in dataset_names()]


# --- the train stage ----------------------------------------------------------------
# GANE trains on the cached datasets of `train.datasets` under torchrun: one process
# per GPU (`train.gpus`) on CUDA, one process on CPU.

TRAIN_DIR = f"results/train/{config['run_name']}"
TRAIN_GPUS = 0 if config["device"] == "cpu" else config["train"]["gpus"]
TRAIN_PROCESSES = max(1, TRAIN_GPUS)


def train_datasets():
    """The datasets GANE trains on (each must be declared under `datasets:`)."""
    names = list(config["train"]["datasets"])
    unknown = [name for name in names if name not in config.get("datasets", {})]
    if unknown:
        raise WorkflowError(f"train.datasets names {unknown}, which are not declared under datasets:")
    return names


def train_tables(wildcards):
    """index.parquet and features.parquet of every training dataset (none when `train.datasets` is
    empty: `augane train` then stops, asking for them)."""
    return [f"{cache_dir(name)}/{table}" for name in train_datasets() for table in ("index.parquet", "features.parquet")]


def train_stores(wildcards):
    """The preprocess and features stores of every training dataset."""
    return [
        f"{cache_dir(name)}/shard-{shard}/{store}"
        for name in train_datasets()
        for shard in shards_of(name)
        for store in ("preprocess.zarr", "features.zarr")
    ]


def train_resources(wildcards):
    """The files training reads besides the cache: face model, embedding, UV layout, albedo, AU detector."""
    resources = config["resources"]
    keys = ("face_model", "mediapipe_embedding", "head_template", "albedo_model")
    return [resources[key] for key in keys if resources.get(key)] + [resources["au_detector"]["checkpoint"]]


def train_run_folder(wildcards, output):
    """results/train/<run_name>: the folder of the run's outputs."""
    return str(Path(output.summary).parent)


def threads_per_process(wildcards, threads):
    """CPU threads for each training process."""
    return max(1, threads // TRAIN_PROCESSES)


def train_targets(wildcards):
    """The trained GANE, its summary and loss curves, when the config names datasets to train on."""
    if not config["train"]["datasets"]:
        return []
    return [f"{TRAIN_DIR}/checkpoints/best.pt", f"{TRAIN_DIR}/summary.json", f"{TRAIN_DIR}/loss_curves.png"]


# --- the demo stage ---------------------------------------------------------------


DEMO_FACE_MODEL_DIR = "results/demo/face_model"


def demo_face_model_targets(wildcards):
    """The demo face model's preview and card, when the config uses the demo face model."""
    if config["resources"]["face_model"] != f"{DEMO_FACE_MODEL_DIR}/face_model.pkl":
        return []
    return [f"{DEMO_FACE_MODEL_DIR}/preview.png", f"{DEMO_FACE_MODEL_DIR}/face_model_card.md"]
