"""Reading user-named YAML/JSON files safely: regular files only, bounded size, strict UTF-8,
no duplicate keys, bounded nesting and bounded alias expansion (YAML bombs).

Every failure is one `ConfigError` naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from mixpe_sim.errors import ConfigError

# Our largest shipped file is a few KiB; 4 MiB leaves room for hand-written sweeps.
MAX_FILE_BYTES = 4 * 2**20
# Nodes after expanding YAML aliases: a config with 100k values is already absurd.
MAX_YAML_NODES = 100_000
# Nesting depth of mappings/lists; ours are at most 5 deep.
MAX_DEPTH = 64


def read_text(path: Path, source: str | None = None) -> str:
    """The UTF-8 text of a regular file of at most MAX_FILE_BYTES (FIFOs and devices refused unopened)."""
    where = source or str(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError(where, "", f"cannot read file ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(where, "", "is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(where, "", "is not a regular file (a FIFO, socket or device); expected a file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(where, "", f"cannot read file ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(where, "", f"file is larger than {MAX_FILE_BYTES // 2**20} MiB (the limit)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(where, "", f"not UTF-8 text (byte {exc.start}: {raw[exc.start]:#04x})") from None


# libyaml's parser when PyYAML was built with it (its wheels are): a hardware preset's four files parse
# in 3 ms instead of 10; the same documents, only syntax-error wording differs
try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML without libyaml
    from yaml import SafeLoader as _SafeLoader


class _StrictLoader(_SafeLoader):
    """SafeLoader that refuses duplicate keys and counts nodes as aliases expand."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: let SafeLoader's own error speak
            break
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_nodes(node: yaml.Node, depth: int, memo: dict[int, int]) -> int:
    """Nodes the document has once every alias is expanded (shared subtrees counted each time)."""
    if depth > MAX_DEPTH:
        raise _TooDeep
    known = memo.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_nodes(k, depth + 1, memo) + _expanded_nodes(v, depth + 1, memo)
                        for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_nodes(v, depth + 1, memo) for v in node.value)
    else:
        total = 1
    memo[id(node)] = total
    return total


class _TooDeep(Exception):
    pass


def _flow_depth_exceeds(text: str, limit: int) -> bool:
    """Whether `[`/`{` nest deeper than `limit` outside quotes and comments. PyYAML's scanner is quadratic
    in flow depth (4 MiB of `[` would take hours), so this linear pre-scan runs first."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, quote, comment = 0, "", False
    for char in text:
        if comment:
            comment = char != "\n"
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#":
            comment = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth = max(0, depth - 1)
    return False


def parse_yaml(text: str, where: str) -> Any:
    """YAML 1.1 safe-load with duplicate keys, deep nesting and alias bombs refused."""
    if _flow_depth_exceeds(text, MAX_DEPTH):
        raise ConfigError(where, "", f"nested more than {MAX_DEPTH} levels deep")
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_nodes(node, 0, {}) > MAX_YAML_NODES:
                raise ConfigError(where, "", f"more than {MAX_YAML_NODES} values once aliases are expanded "
                                  "(nested anchors?)")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except (_TooDeep, RecursionError):
        raise ConfigError(where, "", f"nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(where, "", f"invalid YAML{at}: {problem}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key '{key}'")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(text: str, where: str) -> Any:
    """JSON with duplicate keys, NaN/Infinity and deep nesting refused."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except RecursionError:
        raise ConfigError(where, "", f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(where, "", f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:
        raise ConfigError(where, "", f"invalid JSON: {exc}") from None
