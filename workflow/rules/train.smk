# Rules of the train stage: GANE on the cached features of `train.datasets`
# (results/cache/<dataset>/) with the AU-based losses -> results/train/<run_name>/
# (checkpoints/best.pt and last.pt, summary.json, loss_curves.png, tables).
# Target: `snakemake train`.
#
# The job runs under torchrun: one process per GPU the job holds (resources
# `gpu`, from `train.gpus` with `device: cuda`), one process on CPU (helpers in
# common.smk). On a cluster the profile maps `gpu` to
# the right request. An interrupted job leaves checkpoints/last.pt (not an output,
# so Snakemake keeps it) and the next run of the rule resumes from it when the
# settings and the cache are the same.


rule train:
    input:
        tables=train_tables,
        stores=train_stores,
        resources=train_resources,
    output:
        best=f"{TRAIN_DIR}/checkpoints/best.pt",
        summary=f"{TRAIN_DIR}/summary.json",
        steps=f"{TRAIN_DIR}/train_steps.csv",
        validation=f"{TRAIN_DIR}/validation.csv",
        config=f"{TRAIN_DIR}/config.json",
        curves=report(
            f"{TRAIN_DIR}/loss_curves.png",
            caption="../report/train_curves.rst",
            category="Training",
        ),
    log:
        f"results/logs/train/{config['run_name']}.log",
    benchmark:
        f"results/benchmarks/train/{config['run_name']}.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=settings("train", "model", "losses", "render", "resources", "seed", "device", "run_name"),
        processes=train_processes,
        threads_per_process=threads_per_process,
        out_dir=train_run_folder,
    conda:
        "../../envs/augane.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=720,
        gpu=TRAIN_GPUS,
    shell:
        "torchrun --standalone --nproc-per-node {params.processes} --no-python "
        "augane train --config {params.config:q} --out-dir {params.out_dir:q} "
        "--threads {params.threads_per_process} > {log} 2>&1"


FINAL_TARGETS.append(train_targets)
