"""Feature-caching commands: ``features`` (one shard) and ``gather-features`` (features.parquet)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from augane.cli.common import add_config_arguments, add_threads_argument, config_from_args, set_torch_threads

log = logging.getLogger("augane.features")


def run_features(args: argparse.Namespace) -> int:
    from augane.errors import ConfigError
    from augane.features.extract import FeatureExtractor
    from augane.features.networks import load_feature_networks
    from augane.features.runtime import inference_settings
    from augane.features.shard import features_shard
    from augane.io.manifest import shard_name

    config = config_from_args(args)
    set_torch_threads(args)
    if args.dataset not in config.get("datasets", {}):
        raise ConfigError(f"datasets.{args.dataset}: no such dataset in the config")
    shard = shard_name(int(args.shard))
    shard_dir = Path("results") / "cache" / args.dataset / f"shard-{shard}"
    preprocess = args.preprocess or shard_dir / "preprocess.zarr"
    out = args.out or shard_dir / "features.zarr"
    settings = inference_settings(config)
    networks = load_feature_networks(config, device="cpu")
    features_shard(config, args.dataset, shard, preprocess, out, FeatureExtractor(networks, settings))
    log.info("wrote %s", out)
    return 0


def run_gather_features(args: argparse.Namespace) -> int:
    from augane.features.gather import gather_features

    gather_features(args.manifest, args.out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the feature-caching subcommands."""
    parser = subparsers.add_parser(
        "features",
        help="run the AU detector, DECA (and EMOCA) on one preprocessed shard (features.zarr)",
        description="Cache the networks' outputs for one shard: AU detector outputs and AU-specific (AFG) features, "
        "DECA's global feature and 236 parameters, EMOCA's expression when configured. Samples whose preprocessing "
        "failed are skipped and marked invalid. Runs on CUDA when available (bf16, channels_last per `features:`).",
    )
    add_config_arguments(parser)
    parser.add_argument("--dataset", required=True, help="dataset name (a key under `datasets:`)")
    parser.add_argument("--shard", required=True, help="shard number (e.g. 3 or 0003)")
    parser.add_argument("--preprocess", type=Path, help="preprocess store (default results/cache/<dataset>/shard-XXXX/preprocess.zarr)")
    parser.add_argument("--out", type=Path, help="features store to write (default beside the preprocess store)")
    add_threads_argument(parser)
    parser.set_defaults(func=run_features)

    parser = subparsers.add_parser(
        "gather-features",
        help="gather validity and AU outputs of every shard into features.parquet",
        description="Read each shard's features.zarr beside a manifest and write one table: sample_id, shard, row, "
        "valid and prob_AU<k> per detector output.",
    )
    parser.add_argument("--manifest", type=Path, required=True, help="the dataset's manifest.parquet")
    parser.add_argument("--out", type=Path, required=True, help="table to write (results/cache/<dataset>/features.parquet)")
    parser.set_defaults(func=run_gather_features)
