# AUGANE workflow: demo world -> preprocess -> features -> train -> evaluate.
# Stages live in workflow/rules/*.smk; every rule calls the `augane` command.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        all_targets,
    default_target: True
