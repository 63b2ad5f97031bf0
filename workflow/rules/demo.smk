# Rules of the demo stage: the built-in demo face model, the synthetic world rendered
# from it, and the stand-in detectors trained on the world's crops.
# Targets: `snakemake demo_face_model`, `snakemake demo` (stand-ins and their scores).


rule demo_face_model:
    output:
        model="results/demo/face_model/face_model.pkl",
        mediapipe_embedding="results/demo/face_model/mediapipe_landmark_embedding.npz",
        landmark_embedding="results/demo/face_model/landmark_embedding.npy",
        head_template="results/demo/face_model/head_template.obj",
        albedo_model="results/demo/face_model/albedo_model.npz",
        card="results/demo/face_model/face_model_card.json",
        card_markdown="results/demo/face_model/face_model_card.md",
        preview=report(
            "results/demo/face_model/preview.png",
            caption="../report/face_model.rst",
            category="Demo world",
        ),
    log:
        "results/logs/demo/face_model.log",
    params:
        config=RESOLVED_CONFIG,
        # only its own sub-section: the rest of `demo:` describes the world built on it
        settings=digest(config["demo"]["face_model"]),
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "augane face-model build --config {params.config:q} --out-dir results/demo/face_model > {log} 2>&1"


FINAL_TARGETS.append(demo_face_model_targets)


# --- the synthetic world ------------------------------------------------------------
# Still images with label tables (train, heldout: disjoint identities) and DISFA-layout
# videos with per-frame ground truth, rendered from the demo face model. The datasets
# of config/config.yaml point at these folders, so their manifests ask for them.

wildcard_constraints:
    split="train|heldout",


rule demo_world_images:
    input:
        model=rules.demo_face_model.output.model,
        mediapipe_embedding=rules.demo_face_model.output.mediapipe_embedding,
        landmark_embedding=rules.demo_face_model.output.landmark_embedding,
        albedo_model=rules.demo_face_model.output.albedo_model,
        head_template=rules.demo_face_model.output.head_template,
    output:
        images=directory(f"{DEMO_WORLD_DIR}/{{split}}/images"),
        labels=f"{DEMO_WORLD_DIR}/{{split}}/labels.csv",
        summary=f"{DEMO_WORLD_DIR}/{{split}}/summary.json",
    log:
        "results/logs/demo/world_{split}.log",
    benchmark:
        "results/benchmarks/demo/world_{split}.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=digest(config["demo"]["world"]),
        folder=demo_split_folder,
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "augane demo world --config {params.config:q} --part {wildcards.split} --out {params.folder:q} > {log} 2>&1"


rule demo_world_disfa:
    input:
        model=rules.demo_face_model.output.model,
        mediapipe_embedding=rules.demo_face_model.output.mediapipe_embedding,
        landmark_embedding=rules.demo_face_model.output.landmark_embedding,
        albedo_model=rules.demo_face_model.output.albedo_model,
        head_template=rules.demo_face_model.output.head_template,
    output:
        root=directory(f"{DEMO_WORLD_DIR}/disfa"),
    log:
        "results/logs/demo/world_disfa.log",
    benchmark:
        "results/benchmarks/demo/world_disfa.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=digest(config["demo"]["world"]),
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "augane demo world --config {params.config:q} --part disfa --out {output.root:q} > {log} 2>&1"


# --- stand-in detectors -------------------------------------------------------------
# Trained on the preprocessed crops of demo.detectors.train_dataset (the crops the
# feature stage feeds them) and scored on demo.detectors.heldout_dataset; written in
# the released formats where resources.au_detector / resources.deca point by default.


rule demo_au_detector:
    input:
        unpack(demo_detector_indexes),
    output:
        checkpoint=f"{DEMO_DETECTOR_DIR}/au_detector.pth",
        score=f"{DEMO_DETECTOR_DIR}/au_detector_score.json",
    log:
        "results/logs/demo/au_detector.log",
    benchmark:
        "results/benchmarks/demo/au_detector.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=demo_detector_settings("au_detector"),
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "augane demo train-au-detector --config {params.config:q} --threads {threads} "
        "--out {output.checkpoint:q} --score {output.score:q} > {log} 2>&1"


rule demo_deca:
    input:
        unpack(demo_detector_indexes),
        unpack(face_model_inputs),
    output:
        checkpoint=f"{DEMO_DETECTOR_DIR}/deca_model.tar",
        score=f"{DEMO_DETECTOR_DIR}/deca_score.json",
    log:
        "results/logs/demo/deca.log",
    benchmark:
        "results/benchmarks/demo/deca.tsv"
    params:
        config=RESOLVED_CONFIG,
        settings=demo_detector_settings("deca"),
    conda:
        "../../envs/augane.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "augane demo train-deca --config {params.config:q} --threads {threads} "
        "--out {output.checkpoint:q} --score {output.score:q} > {log} 2>&1"


rule demo:
    input:
        demo_detector_targets,
        demo_face_model_targets,


FINAL_TARGETS.append(demo_detector_targets)
