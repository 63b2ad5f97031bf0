# The AUGANE workflow plus one rule of the SLURM integration test
# (tests/cluster/test_slurm_workflow.py): `cluster_test_flaky` fails on its
# first attempt and succeeds on the next, so that a run shows a job that SLURM
# reports failed and Snakemake resubmits (profile key `retries`).


include: "../../Snakefile"


def attempt_number(wildcards, attempt):
    """Snakemake's attempt counter (1 on the first submission)."""
    return attempt


rule cluster_test_flaky:
    output:
        "results/cluster-test/flaky.txt",
    log:
        "results/logs/cluster-test/flaky.log",
    threads: 1
    resources:
        mem_mb=100,
        runtime=5,
        flaky_attempt=attempt_number,
    shell:
        'echo "attempt {resources.flaky_attempt} in SLURM job ${{SLURM_JOB_ID:-none}}" >> {log}; '
        'if [ {resources.flaky_attempt} -lt 2 ]; then echo "failing on purpose" >> {log}; exit 3; fi; '
        "echo {resources.flaky_attempt} > {output}"
