# Rules of the demo stage: the built-in demo face model (more demo-world rules
# follow it). Target: `snakemake demo_face_model`.


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
