# Rules of the features stage: each shard's preprocess.zarr -> features.zarr
# (AU detector outputs and AFG features, DECA feature and parameters, EMOCA
# expression) -> results/cache/<dataset>/features.parquet. Target: `snakemake features`.

# The stage runs on CUDA when one is present (config `device`); on a cluster the
# profile maps `gpu` to the right request.
FEATURES_GPUS = 0 if config["device"] == "cpu" else 1


rule untrained_dev_weights:
    output:
        deca="results/dev_weights/untrained_deca_model.tar",
        au_detector="results/dev_weights/untrained_au_detector.pth",
        emoca="results/dev_weights/untrained_emoca.ckpt",
    log:
        "results/logs/features/untrained_dev_weights.log",
    params:
        config=RESOLVED_CONFIG,
        settings=settings("resources", "seed"),
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "augane dev-weights --untrained --config {params.config:q} --out-dir results/dev_weights > {log} 2>&1"


rule features_shard:
    input:
        store="results/cache/{dataset}/shard-{shard}/preprocess.zarr",
        checkpoints=feature_checkpoints,
    output:
        store=directory("results/cache/{dataset}/shard-{shard}/features.zarr"),
    log:
        "results/logs/features/{dataset}/shard-{shard}.log",
    benchmark:
        "results/benchmarks/features/{dataset}/shard-{shard}.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=settings("features", "resources", "device"),
    conda:
        "../../envs/augane.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=FEATURES_GPUS,
    shell:
        "augane features --config {params.config:q} --dataset {wildcards.dataset} --shard {wildcards.shard} "
        "--threads {threads} --preprocess {input.store:q} --out {output.store:q} > {log} 2>&1"


rule features_gather:
    input:
        manifest="results/cache/{dataset}/manifest.parquet",
        stores=features_stores,
    output:
        table="results/cache/{dataset}/features.parquet",
    log:
        "results/logs/features/{dataset}/gather.log",
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "augane gather-features --manifest {input.manifest:q} --out {output.table:q} > {log} 2>&1"


rule features:
    input:
        features_tables,


FINAL_TARGETS.append(features_tables)
