# Shared helpers of the AUGANE workflow: config validation, the resolved
# config every rule passes to the `augane` command, and target lists.

import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
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


def train_datasets():
    """The datasets GANE trains and validates on (each must be declared under `datasets:`)."""
    for key in ("datasets", "val_datasets"):
        unknown = [name for name in config["train"][key] if name not in config.get("datasets", {})]
        if unknown:
            raise WorkflowError(f"train.{key} names {unknown}, which are not declared under datasets:")
    return list(dict.fromkeys([*config["train"]["datasets"], *config["train"]["val_datasets"]]))


def train_tables(wildcards):
    """index.parquet and features.parquet of every training and validation dataset (none when
    `train.datasets` is empty: `augane train` then stops, asking for them)."""
    return [f"{cache_dir(name)}/{table}" for name in train_datasets() for table in ("index.parquet", "features.parquet")]


def train_stores(wildcards):
    """The preprocess and features stores of every training and validation dataset."""
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


def train_processes(wildcards, resources):
    """torchrun processes of the train job: one per GPU the job holds (resources.gpu, which a profile's
    set-resources may change), one on CPU."""
    return max(1, int(resources.gpu))


def threads_per_process(wildcards, threads, resources):
    """CPU threads for each training process."""
    return max(1, threads // train_processes(wildcards, resources))


def train_targets(wildcards):
    """The trained GANE, its summary and loss curves, when the config names datasets to train on."""
    if not config["train"]["datasets"]:
        return []
    return [f"{TRAIN_DIR}/checkpoints/best.pt", f"{TRAIN_DIR}/summary.json", f"{TRAIN_DIR}/loss_curves.png"]


# --- the evaluate stage -------------------------------------------------------------
# The DISFA evaluation (evaluate.disfa.dataset) reconstructs the selected frames of a
# DISFA-type dataset with each method; intermediate tables go to results/eval/disfa/intermediate/.

EVAL_DIR = "results/eval/disfa"
EVAL_WORK = f"{EVAL_DIR}/intermediate"
EVALUATE_GPUS = 0 if config["device"] == "cpu" else 1


def evaluate_dataset():
    """The DISFA-type dataset the evaluation runs on (evaluate.disfa.dataset, declared under datasets:)."""
    name = config["evaluate"]["disfa"]["dataset"]
    if not name:
        raise WorkflowError("evaluate.disfa.dataset is not set: name the DISFA-type dataset to evaluate on")
    if name not in config.get("datasets", {}):
        raise WorkflowError(f"evaluate.disfa.dataset: {name!r} is not declared under datasets:")
    if config["datasets"][name]["type"] != "disfa":
        raise WorkflowError(f"evaluate.disfa.dataset: {name!r} has type {config['datasets'][name]['type']}, expected disfa")
    return name


def evaluate_dataset_name(wildcards):
    """The evaluated dataset's name (a rule's params)."""
    return evaluate_dataset()


def evaluate_methods():
    """The methods evaluated: evaluate.disfa.methods, EMOCA only when resources.emoca.checkpoint is set."""
    methods = list(config["evaluate"]["disfa"]["methods"])
    if not config["resources"]["emoca"].get("checkpoint"):
        methods = [method for method in methods if method != "emoca"]
    return methods


def evaluate_checkpoint():
    """The GANE checkpoint evaluated as AUGANE: evaluate.disfa.checkpoint, else the config's training run."""
    return config["evaluate"]["disfa"].get("checkpoint") or f"{TRAIN_DIR}/checkpoints/best.pt"


def evaluate_has_ground_truth():
    """Whether the evaluated dataset carries per-frame ground truth (GroundTruth/, the synthetic world)."""
    name = config["evaluate"]["disfa"]["dataset"]
    if not name or name not in config.get("datasets", {}):
        return False
    path = Path(config["datasets"][name]["path"])
    return path.parts[:2] == ("results", "demo") or (path / "GroundTruth").is_dir()


def evaluate_tables(wildcards):
    """The evaluated dataset's index.parquet and features.parquet."""
    folder = cache_dir(evaluate_dataset())
    return {"index": f"{folder}/index.parquet", "features": f"{folder}/features.parquet"}


def reconstruction_resources(wildcards):
    """Files a reconstruction reads besides the cache: face model, embedding, UV layout, albedo, AU detector,
    and the GANE checkpoint when AUGANE is reconstructed."""
    files = train_resources(wildcards)
    if getattr(wildcards, "method", "augane") == "augane" and "augane" in evaluate_methods():
        files.append(evaluate_checkpoint())
    return files


def evaluate_method_outputs():
    """Outputs of one method's reconstruction: predictions, and errors against the ground truth when it exists."""
    outputs = {"predictions": f"{EVAL_WORK}/{{method}}/predictions.parquet"}
    if evaluate_has_ground_truth():
        outputs["errors"] = f"{EVAL_WORK}/{{method}}/errors.parquet"
    return outputs


def evaluate_errors_option(wildcards, output):
    """``--errors-out <file>`` when the rule writes ground-truth errors."""
    return f"--errors-out {output.errors}" if "errors" in output.keys() else ""


def evaluate_method_predictions(wildcards):
    """Every evaluated method's predictions (and ground-truth errors)."""
    methods = evaluate_methods()
    tables = {"predictions": [f"{EVAL_WORK}/{method}/predictions.parquet" for method in methods]}
    if evaluate_has_ground_truth():
        tables["errors"] = [f"{EVAL_WORK}/{method}/errors.parquet" for method in methods]
    return tables


def evaluate_combined_outputs():
    """The combined predictions table (and error table on the synthetic world)."""
    outputs = {"predictions": f"{EVAL_WORK}/predictions.parquet"}
    if evaluate_has_ground_truth():
        outputs["errors"] = f"{EVAL_WORK}/geometry_errors.parquet"
    return outputs


def evaluate_combine_errors_option(wildcards, input, output):
    """``--errors <files> --errors-out <file>`` on the synthetic world."""
    if "errors" not in output.keys():
        return ""
    return f"--errors {' '.join(input.errors)} --errors-out {output.errors}"


def evaluate_report_inputs(wildcards):
    """What evaluate-report reads: the predictions, the dataset index (labels), the images and the errors."""
    inputs = {
        "predictions": f"{EVAL_WORK}/predictions.parquet",
        "labels": f"{cache_dir(evaluate_dataset())}/index.parquet",
        "images": f"{EVAL_WORK}/images",
    }
    if evaluate_has_ground_truth():
        inputs["errors"] = f"{EVAL_WORK}/geometry_errors.parquet"
    return inputs


def evaluate_report_options(wildcards, input):
    """``--geometry <file>`` on the synthetic world."""
    return f"--geometry {input.errors}" if "errors" in input.keys() else ""


def evaluate_report_folder(wildcards, output):
    """results/eval/disfa: the folder evaluate-report writes to (that of its report.md)."""
    return str(Path(output.report).parent)


def evaluate_report_outputs():
    """The report's outputs (evaluate-report's files), the ones shown in the HTML report wrapped in report()."""
    disfa = config["evaluate"]["disfa"]

    def shown(name, caption, subcategory=None):
        return report(f"{EVAL_DIR}/{name}", caption=f"../report/{caption}.rst", category="Evaluation",
                      subcategory=subcategory)

    outputs = {
        "selection": shown("selection.csv", "selection", "Tables"),
        "per_subject": shown("f1_per_subject.csv", "f1_per_subject", "Tables"),
        "per_subject_md": f"{EVAL_DIR}/f1_per_subject.md",
        "per_au": shown("f1_per_au.csv", "f1_per_au", "Tables"),
        "per_au_md": f"{EVAL_DIR}/f1_per_au.md",
        "labels": shown("f1_labels_per_au.csv", "f1_labels", "Tables"),
        "labels_md": f"{EVAL_DIR}/f1_labels_per_au.md",
        "labels_per_subject": f"{EVAL_DIR}/f1_labels_per_subject.csv",
        "labels_per_subject_md": f"{EVAL_DIR}/f1_labels_per_subject.md",
        "cells": f"{EVAL_DIR}/f1_cells.csv",
        "support": f"{EVAL_DIR}/support_per_au.csv",
        "bars_subject": shown("f1_per_subject.png", "bars_per_subject", "Figures"),
        "bars_au": shown("f1_per_au.png", "bars_per_au", "Figures"),
        "bars_labels": shown("f1_labels_per_au.png", "bars_labels", "Figures"),
        "qualitative_frames": f"{EVAL_DIR}/qualitative_frames.csv",
        "summary": f"{EVAL_DIR}/summary.json",
        "report": shown("report.md", "report"),
    }
    if disfa["qualitative_frames"] > 0:
        outputs["qualitative"] = shown("qualitative.png", "qualitative", "Figures")
    if evaluate_has_ground_truth():
        outputs["geometry"] = shown("geometry_errors.csv", "geometry", "Tables")
    return outputs


def evaluate_targets(wildcards):
    """The evaluation's report and tables (target evaluate_disfa); a clear error when no dataset is named."""
    evaluate_dataset()
    return [f"{EVAL_DIR}/report.md", f"{EVAL_DIR}/summary.json"]


def evaluate_targets_when_configured(wildcards):
    """The evaluation's outputs for `all`: nothing when evaluate.disfa.dataset is not set."""
    return evaluate_targets(wildcards) if config["evaluate"]["disfa"]["dataset"] else []


def reconstruct_name():
    """The output folder name of reconstruct.input (its file or folder name without the ending), or None."""
    media = config["reconstruct"]["input"]
    return Path(media).stem if media else None


def reconstruct_targets(wildcards):
    """results/reconstruct/<name>/ of reconstruct.input; nothing (with a hint) when it is not set."""
    name = reconstruct_name()
    if name is None:
        logger.warning("reconstruct.input is not set: nothing to reconstruct (e.g. --config "
                       "reconstruct='{input: my_video.mp4}', or run `augane reconstruct INPUT --out-dir DIR`)")
        return []
    return [f"results/reconstruct/{name}"]


def reconstruct_inputs(wildcards):
    """The configured media (reconstruct.input) and what reconstruction reads: networks, face model, checkpoint."""
    section = config["reconstruct"]
    media = section["input"]
    if wildcards.name != reconstruct_name():
        raise WorkflowError(f"results/reconstruct/{wildcards.name} is not the output of reconstruct.input ({media}); "
                            "set reconstruct.input to the image, video or folder to reconstruct")
    if not Path(media).exists():
        raise WorkflowError(f"reconstruct.input: {media} does not exist")
    resources = config["resources"]
    files = {"media": media, "resources": train_resources(wildcards) + [resources["deca"]["checkpoint"]]}
    if section["method"] == "emoca":
        files["emoca"] = resources["emoca"]["checkpoint"] or []
    if section["method"] == "augane":
        files["checkpoint"] = section.get("checkpoint") or f"{TRAIN_DIR}/checkpoints/best.pt"
    return files


# --- the demo stage ---------------------------------------------------------------


DEMO_FACE_MODEL_DIR = "results/demo/face_model"


def demo_face_model_targets(wildcards):
    """The demo face model's preview and card, when the config uses the demo face model."""
    if config["resources"]["face_model"] != f"{DEMO_FACE_MODEL_DIR}/face_model.pkl":
        return []
    return [f"{DEMO_FACE_MODEL_DIR}/preview.png", f"{DEMO_FACE_MODEL_DIR}/face_model_card.md"]


DEMO_WORLD_DIR = "results/demo/world"
DEMO_DETECTOR_DIR = "results/demo/detectors"


def demo_split_folder(wildcards, output):
    """The folder of a demo-world image split (parent of its images/ and labels.csv)."""
    return str(Path(output.labels).parent)


def demo_detector_datasets_missing():
    """The keys of demo.detectors (train_dataset, heldout_dataset) whose dataset is not in the config."""
    detectors = config["demo"]["detectors"]
    return [key for key in ("train_dataset", "heldout_dataset") if detectors[key] not in config.get("datasets", {})]


def demo_detector_datasets_configured():
    """Whether the datasets the stand-in detectors learn from are in the config."""
    return not demo_detector_datasets_missing()


def demo_detector_indexes(wildcards):
    """index.parquet of the datasets the stand-in detectors learn from and are scored on."""
    detectors = config["demo"]["detectors"]
    missing = demo_detector_datasets_missing()
    if missing:
        key = missing[0]
        raise WorkflowError(
            f"demo.detectors.{key}: {detectors[key]!r} is not a dataset of the config; the stand-in detectors "
            "learn from the demo world's datasets (see config/config.yaml), or point resources.au_detector "
            "and resources.deca at real checkpoints"
        )
    return {
        "train": f"{cache_dir(detectors['train_dataset'])}/index.parquet",
        "heldout": f"{cache_dir(detectors['heldout_dataset'])}/index.parquet",
    }


def face_model_inputs(wildcards):
    """The configured face model and its 105-landmark embedding (inputs of rules that decode faces)."""
    resources = config["resources"]
    return {"face_model": resources["face_model"], "mediapipe_embedding": resources["mediapipe_embedding"]}


def demo_detector_settings(network):
    """Digest of what decides a stand-in detector: its resources layout, demo.detectors and the seed."""
    return digest(
        {"resources": config["resources"][network], "detectors": config["demo"]["detectors"], "seed": config["seed"]}
    )


def demo_detector_targets(wildcards):
    """The stand-in detectors' score files, when the config uses the stand-in checkpoints and their datasets."""
    resources = config["resources"]
    targets = []
    if not demo_detector_datasets_configured():
        return targets
    if resources["au_detector"]["checkpoint"] == f"{DEMO_DETECTOR_DIR}/au_detector.pth":
        targets.append(f"{DEMO_DETECTOR_DIR}/au_detector_score.json")
    if resources["deca"]["checkpoint"] == f"{DEMO_DETECTOR_DIR}/deca_model.tar":
        targets.append(f"{DEMO_DETECTOR_DIR}/deca_score.json")
    return targets
