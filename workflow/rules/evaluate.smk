# Rules of the evaluate stage: the paper's DISFA evaluation (target `snakemake evaluate_disfa`)
# and the reconstruction of a configured image, folder or video (target `snakemake reconstruct`).
#
#   index.parquet + features.parquet of evaluate.disfa.dataset
#     -> evaluate_inputs   the AU detector on every input frame, with its place in the cache
#     -> evaluate_select   the top evaluate.disfa.num_videos videos, every frame_stride-th frame
#     -> evaluate_reconstruct (one job per method: augane, deca, emoca)
#                          cached features -> parameters -> FLAME -> render over the crop -> AU detector
#     -> evaluate_combine  one predictions table (input rows + every method), one error table (synthetic world)
#     -> evaluate_images   input crops and renders of the qualitative grid's frames
#     -> evaluate_report   tables, plots, grid, report.md under results/eval/disfa/ (HTML: snakemake --report)
# Helpers are in common.smk ("the evaluate stage").

wildcard_constraints:
    method="augane|deca|emoca",


rule evaluate_inputs:
    input:
        unpack(evaluate_tables),
    output:
        table=f"{EVAL_WORK}/inputs.parquet",
    log:
        "results/logs/evaluate/inputs.log",
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "augane evaluate-inputs --index {input.index:q} --features {input.features:q} --out {output.table:q} "
        "> {log} 2>&1"


rule evaluate_select:
    input:
        inputs=rules.evaluate_inputs.output.table,
    output:
        selection=f"{EVAL_WORK}/selection.csv",
        frames=f"{EVAL_WORK}/frames.csv",
    log:
        "results/logs/evaluate/select.log",
    params:
        config=RESOLVED_CONFIG,
        settings=settings("evaluate"),
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "augane evaluate-select --config {params.config:q} --features {input.inputs:q} --out {output.selection:q} "
        "--frames-out {output.frames:q} > {log} 2>&1"


rule evaluate_reconstruct:
    input:
        frames=rules.evaluate_select.output.frames,
        tables=rules.evaluate_inputs.output.table,
        resources=reconstruction_resources,
    output:
        **evaluate_method_outputs(),
    log:
        "results/logs/evaluate/reconstruct_{method}.log",
    benchmark:
        "results/benchmarks/evaluate/reconstruct_{method}.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=settings("evaluate", "render", "resources", "features", "device"),
        dataset=evaluate_dataset_name,
        errors=evaluate_errors_option,
    conda:
        "../../envs/augane.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=EVALUATE_GPUS,
    shell:
        "augane evaluate-reconstruct --config {params.config:q} --dataset {params.dataset} --frames {input.frames:q} "
        "--method {wildcards.method} --out {output.predictions:q} {params.errors} --threads {threads} > {log} 2>&1"


rule evaluate_combine:
    input:
        unpack(evaluate_method_predictions),
        inputs=rules.evaluate_inputs.output.table,
    output:
        **evaluate_combined_outputs(),
    log:
        "results/logs/evaluate/combine.log",
    params:
        errors=evaluate_combine_errors_option,
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "augane evaluate-combine --inputs {input.inputs:q} --predictions {input.predictions:q} "
        "--out {output.predictions:q} {params.errors} > {log} 2>&1"


rule evaluate_images:
    input:
        predictions=f"{EVAL_WORK}/predictions.parquet",
        frames=rules.evaluate_select.output.frames,
        resources=reconstruction_resources,
    output:
        images=directory(f"{EVAL_WORK}/images"),
    log:
        "results/logs/evaluate/images.log",
    params:
        config=RESOLVED_CONFIG,
        settings=settings("evaluate", "render", "resources", "device"),
        dataset=evaluate_dataset_name,
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
        gpu=EVALUATE_GPUS,
    shell:
        "augane evaluate-images --config {params.config:q} --dataset {params.dataset} "
        "--predictions {input.predictions:q} --frames {input.frames:q} --out-dir {output.images:q} "
        "--threads {threads} > {log} 2>&1"


rule evaluate_report:
    input:
        unpack(evaluate_report_inputs),
    output:
        **evaluate_report_outputs(),
    log:
        "results/logs/evaluate/report.log",
    params:
        config=RESOLVED_CONFIG,
        settings=settings("evaluate", "resources"),
        geometry=evaluate_report_options,
        out_dir=evaluate_report_folder,
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "augane evaluate-report --config {params.config:q} --predictions {input.predictions:q} "
        "--labels {input.labels:q} --images {input.images:q} {params.geometry} --out-dir {params.out_dir:q} "
        "> {log} 2>&1"


rule evaluate_disfa:
    input:
        evaluate_targets,


FINAL_TARGETS.append(evaluate_targets_when_configured)


# --- users' media -------------------------------------------------------------------
# `snakemake reconstruct --config reconstruct='{input: my_video.mp4}'` (or reconstruct.input in a
# config file) -> results/reconstruct/<name>/; the command `augane reconstruct` does the same by hand.


rule reconstruct_media:
    input:
        unpack(reconstruct_inputs),
    output:
        folder=directory("results/reconstruct/{name}"),
    log:
        "results/logs/reconstruct/{name}.log",
    benchmark:
        "results/benchmarks/reconstruct/{name}.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=settings("reconstruct", "preprocess", "render", "resources", "features", "device"),
    conda:
        "../../envs/augane.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=EVALUATE_GPUS,
    shell:
        "augane reconstruct {input.media:q} --config {params.config:q} --out-dir {output.folder:q} "
        "--threads {threads} > {log} 2>&1"


rule reconstruct:
    input:
        reconstruct_targets,
