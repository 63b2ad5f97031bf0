# Rules of the preprocess stage: datasets -> manifest (checkpoint) -> one
# preprocess.zarr per shard -> index.parquet. Target: `snakemake preprocess`.


rule samples:
    output:
        images=directory("results/samples/images"),
        videos=directory("results/samples/videos"),
    log:
        "results/logs/preprocess/samples.log",
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "augane samples --out-dir results/samples > {log} 2>&1"


checkpoint manifest:
    input:
        dataset_sources,
    output:
        manifest="results/cache/{dataset}/manifest.parquet",
    log:
        "results/logs/preprocess/{dataset}/manifest.log",
    params:
        config=RESOLVED_CONFIG,
        dataset=dataset_settings,
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "augane manifest --config {params.config:q} --dataset {wildcards.dataset} "
        "--out {output.manifest:q} > {log} 2>&1"


rule preprocess_shard:
    input:
        manifest="results/cache/{dataset}/manifest.parquet",
        task=mediapipe_task_input,
    output:
        store=directory("results/cache/{dataset}/shard-{shard}/preprocess.zarr"),
    log:
        "results/logs/preprocess/{dataset}/shard-{shard}.log",
    benchmark:
        "results/benchmarks/preprocess/{dataset}/shard-{shard}.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=settings("preprocess"),
        dataset=dataset_settings,
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "augane preprocess --config {params.config:q} --dataset {wildcards.dataset} "
        "--manifest {input.manifest:q} --shard {wildcards.shard} --out {output.store:q} > {log} 2>&1"


rule preprocess_gather:
    input:
        manifest="results/cache/{dataset}/manifest.parquet",
        stores=preprocess_stores,
    output:
        index="results/cache/{dataset}/index.parquet",
    log:
        "results/logs/preprocess/{dataset}/gather.log",
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "augane gather-index --manifest {input.manifest:q} --out {output.index:q} > {log} 2>&1"


rule preprocess:
    input:
        preprocess_indexes,


FINAL_TARGETS.append(preprocess_indexes)
