"""Load YAML configs with dotted command-line overrides, validated like the file (L1).

``load_config("study.yaml", ["policy.lr=1e-6"], schema=MyConfig)`` reads the file, applies the
overrides (values parsed as YAML scalars: ``3``, ``1e-6``, ``true``, ``[a, b]``), and validates the
result with the schema. Validation errors become one ``ConfigError`` listing every bad field with
the value given and the reason.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from judgelab.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", "check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}", "fix the YAML syntax") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _parse_value(raw: str) -> Any:
    try:
        # YAML 1.1 reads "1e-6" as a string; accept it as a float like a person would.
        return float(raw) if _looks_like_float(raw) else yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _looks_like_float(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return any(c in raw.lower() for c in ".e") and raw.strip().lower() not in ("nan", "inf", "-inf")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``a.b.c=value`` overrides applied (list items by index: ``a.0.b=1``)."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} has no '='", "write overrides as dotted.key=value, e.g. policy.lr=1e-6"
            )
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override key {key!r} is malformed", "use dotted.key=value")
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = node[_index(part, item)]
            else:
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
            if not isinstance(node, (dict, list)):
                raise ConfigError(
                    f"override {item!r}: '{'.'.join(parts[: i + 1])}' is a value, not a section",
                    "check the key path against `judgelab validate` output",
                )
        last = parts[-1]
        if isinstance(node, list):
            node[_index(last, item)] = _parse_value(raw)
        else:
            node[last] = _parse_value(raw)
    return out


def _index(part: str, item: str) -> int:
    try:
        return int(part)
    except ValueError as e:
        raise ConfigError(f"override {item!r}: {part!r} must be a list index") from e


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: {err.error_count()} invalid field(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        given = e.get("input")
        given_s = repr(given)
        if len(given_s) > 80:
            given_s = given_s[:77] + "..."
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            lines.append(f"  - {loc}: unknown key (given {given_s})")
        elif e["type"] == "missing":
            lines.append(f"  - {loc}: required, missing")
        else:
            lines.append(f"  - {loc}: {msg} (given {given_s})")
    return "\n".join(lines)


def validate_config(data: dict[str, Any], schema: type[M], source: str = "config") -> M:
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise ConfigError(
            format_validation_error(e, source),
            "fix the listed fields; `judgelab validate FILE` checks a config without running it",
        ) from e


def load_config(path: str | Path, overrides: list[str] | None = None, *, schema: type[M]) -> M:
    data = apply_overrides(load_yaml(path), overrides or [])
    return validate_config(data, schema, source=str(path))


__all__ = ["apply_overrides", "format_validation_error", "load_config", "load_yaml", "validate_config"]
