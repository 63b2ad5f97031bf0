"""Loading and validating AUGANE configs.

One JSON schema (``schema.yaml`` beside this module, also read by the
Snakefile) describes every key; its ``default:`` values fill keys a config
leaves out, exactly as Snakemake's ``validate`` does, so the CLI and the
workflow see the same resolved config.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from augane.errors import ConfigError

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


def load_schema() -> dict[str, Any]:
    """The config JSON schema as a dict."""
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _extend_with_defaults(validator_class: type) -> type:
    """A validator class that fills ``default:`` values of object properties while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _extend_with_defaults(jsonschema.Draft7Validator)


def validate_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate ``config`` in place against the schema, filling defaults; returns it.

    Raises:
        ConfigError: naming the offending key path and what the schema expected.
    """
    validator = _DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors[:10]:
            key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
            lines.append(f"  {key}: {error.message}")
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ConfigError(f"{source} is not a valid AUGANE config:\n" + "\n".join(lines) + more)
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    return path, yaml.safe_load(raw)


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``key.path=value`` override in ``config`` (creating mappings on the way)."""
    for text in overrides:
        path, value = parse_override(text)
        node = config
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a mapping in the config")
            node = child
        node[path[-1]] = value
    return config


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a YAML config, apply overrides, validate and fill defaults."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as handle:
            # JSON (the workflow's resolved config) is read as JSON: YAML 1.1 takes 1e-05 for a string
            config = (json.load(handle) if path.suffix.lower() == ".json" else yaml.safe_load(handle)) or {}
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path} is not valid JSON: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, got {type(config).__name__}")
    apply_overrides(config, list(overrides))
    return validate_config(config, source=str(path))


def digest(value: Any) -> str:
    """Short, stable sha256 of a JSON-serialisable value (used for provenance and rerun triggers)."""
    blob = json.dumps(value, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]
