# Shared helpers of the AUGANE workflow: config validation, the resolved
# config every rule passes to the `augane` command, and target lists.

import json
from pathlib import Path

from snakemake.utils import validate

from augane.config import digest


validate(config, schema="../schemas/config.schema.yaml")


def _write_resolved_config():
    """Write the validated config (defaults filled, overrides applied) under a
    content-addressed name, so an unchanged config never touches the file."""
    text = json.dumps(config, indent=2, sort_keys=True)
    path = Path("results") / "config" / f"config-{digest(config)}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text)
        temporary.replace(path)
    return str(path)


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
