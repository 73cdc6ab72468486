"""Load YAML hardware descriptions, resolve nested presets, apply overrides, validate.

Errors become one `ConfigError` line naming the file (or `--set`), the key path and what is allowed.
"""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.config.presets import resolve_preset
from mixpe_sim.config.textfile import parse_yaml, read_text
from mixpe_sim.errors import ConfigError

DEFAULT_HARDWARE = "mixpe-w4a16"
# Top-level keys of a hardware file that may name another preset file instead of inlining it.
NESTED_PRESET_KEYS = ("memory", "energy", "area")
# A hardware file without an `area:` key is priced with the 28 nm table of the paper's technology.
DEFAULT_AREA_TABLE = "tech-28nm"


def load_yaml_file(path: Path, source: str | None = None) -> dict[str, Any]:
    """A YAML file holding a mapping; `source` names it in errors (default: the path)."""
    where = source or str(path)
    data = parse_yaml(read_text(path, where), where)
    if not isinstance(data, dict):
        raise ConfigError(where, "", "expected a mapping of keys at the top level")
    return data


def parse_overrides(assignments: list[str]) -> list[tuple[str, Any]]:
    """`key.path=value` strings -> (key path, YAML-typed value)."""
    parsed = []
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError("--set", item, "expected key.path=value")
        try:
            value = parse_yaml(raw, f"--set {item}") if raw else ""
        except ConfigError:
            value = raw
        parsed.append((key, value))
    return parsed


def _apply_override(data: dict[str, Any], key_path: str, value: Any) -> None:
    node = data
    parts = key_path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def load_hardware(
    spec: str | None = None,
    memory: str | None = None,
    overrides: list[tuple[str, Any]] | None = None,
    option: str = "--hw",
) -> HardwareConfig:
    """Resolve `--hw`, `--memory` and `--set` into one validated hardware config; `option` names the
    hardware spec in errors (compare's reference comes from --reference)."""
    hw_path = resolve_preset("hardware", spec or DEFAULT_HARDWARE, option)
    data = load_yaml_file(hw_path)
    data.setdefault("area", DEFAULT_AREA_TABLE)
    sources: dict[str, str] = {}
    if memory is not None:
        data["memory"] = memory
        sources["memory"] = "--memory"
    for key in NESTED_PRESET_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            option = sources.get(key, f"{hw_path}: {key}")
            nested_path = resolve_preset(key, value, option, relative_to=hw_path.parent)
            data[key] = load_yaml_file(nested_path)
            sources[key] = str(nested_path)
    override_sources: dict[str, str] = {}
    for key_path, value in overrides or []:
        _apply_override(data, key_path, copy.deepcopy(value))
        shown = str(value) if len(str(value)) <= 60 else str(value)[:57] + "..."
        override_sources[key_path] = f"--set {key_path}={shown}"
    try:
        return HardwareConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error_from(exc.errors(), str(hw_path), sources, override_sources) from None


def apply_overrides(hw: HardwareConfig, overrides: list[tuple[str, Any]], source: str = "overrides") -> HardwareConfig:
    """A copy of `hw` with `(key path, value)` overrides applied and the whole config validated again."""
    data = hw.model_dump(mode="json")
    override_sources = {}
    for key_path, value in overrides:
        _apply_override(data, key_path, copy.deepcopy(value))
        override_sources[key_path] = f"{source} {key_path}={value!r}"
    try:
        return HardwareConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error_from(exc.errors(), hw.name, {}, override_sources) from None


# ---------------------------------------------------------------- error rendering


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes inside an annotation (unwrapping Annotated, unions, Optional)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [cls for arg in get_args(annotation) for cls in _model_classes(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _dict_value_annotation(annotation: Any) -> Any | None:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _dict_value_annotation(get_args(annotation)[0])
    if origin is dict:
        return get_args(annotation)[1]
    return None


def _walk(loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """Follow a pydantic error location through the schema.

    Returns the user-visible key path (union tags removed) and the model class that owns the last key.
    """
    path: list[str] = []
    current: list[type[BaseModel]] = [HardwareConfig]
    owner: type[BaseModel] | None = HardwareConfig
    pending_dict_value: Any | None = None
    for part in loc:
        if pending_dict_value is not None:
            path.append(str(part))
            current = _model_classes(pending_dict_value)
            owner = current[0] if len(current) == 1 else None
            pending_dict_value = None
            continue
        tagged = [cls for cls in current if _tag_of(cls) == part]
        if len(current) > 1 and tagged:
            current = tagged
            owner = tagged[0]
            continue
        path.append(str(part))
        field = next((cls.model_fields[part] for cls in current if part in cls.model_fields), None)
        if field is None:
            current, owner = [], None
            continue
        owner = current[0] if len(current) == 1 else owner
        pending_dict_value = _dict_value_annotation(field.annotation)
        current = _model_classes(field.annotation)
        if len(current) == 1:
            owner = current[0]
    return path, owner


def _tag_of(cls: type[BaseModel]) -> Any:
    field = cls.model_fields.get("kind")
    if field is None:
        return None
    args = get_args(field.annotation)
    return args[0] if len(args) == 1 else None


def _parent_owner(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    return _walk(loc[:-1])[1] if loc else HardwareConfig


def config_error_from(
    errors: list[Any], hw_file: str, sources: dict[str, str], override_sources: dict[str, str]
) -> ConfigError:
    """Render the first pydantic error (locations relative to HardwareConfig) as one ConfigError."""
    error = errors[0]
    loc = tuple(error["loc"])
    path, _ = _walk(loc)
    key_path = ".".join(path)
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _parent_owner(loc)
        allowed = ", ".join(sorted(owner.model_fields)) if owner else "none"
        message = f"unknown key '{path[-1]}' (allowed: {allowed})"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid" or kind == "union_tag_not_found":
        message = "'kind' must be one of: dram, flat, ideal"
    else:
        text = error["msg"].removeprefix("Value error, ")
        given = error.get("input")
        text_given = repr(given)
        text_given = text_given if len(text_given) <= 60 else text_given[:57] + "..."
        shown = "" if isinstance(given, dict | list) else f" (got {text_given})"
        message = f"{text}{shown}"
    source = hw_file
    for override_key, override_source in override_sources.items():
        # the override set this key, a key inside it, or named a key below one that does not exist
        if key_path == override_key or key_path.startswith(override_key + ".") or \
                (kind == "extra_forbidden" and override_key.startswith(key_path + ".")):
            return ConfigError(override_source, key_path, message)
    if path and path[0] in sources:
        source = sources[path[0]]
        if source != "--memory":
            key_path = ".".join(path[1:])
    # an override that switched a section's kind explains errors about that section's other keys
    switched = [src for key, src in override_sources.items()
                if key.endswith(".kind") and ".".join(path).startswith(key.removesuffix("kind"))]
    if switched:
        source = f"{source} (after {switched[0]})"
    return ConfigError(source, key_path, message)
