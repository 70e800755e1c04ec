"""Typed stage configs: a YAML file plus `key.sub=value` overrides, checked on load.

Each stage declares its config as (nested) dataclasses. `load_config(Cls, path, overrides)` reads
the YAML, applies the overrides (values parsed as YAML scalars, so `lr=1e-5` is a float and
`sources=[{task: cflue, path: x.json}]` a list), and builds the dataclasses, failing with a message
that names the key and the expected type on any unknown key or wrong type.

    cfg = load_config(DataConfig, "recipes/data_offline.yaml", ["teacher.model=deepseek-reasoner"])
    to_dict(cfg)  # -> plain dict, as written to the run directory
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ValueError):
    pass


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key.sub=value")
    key, raw = item.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {item!r}: empty key")
    return keys, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return data


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the type annotation `tp` (and build nested dataclasses)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} does not match {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return _build(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        out = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        vt = args[1] if args else Any
        return {k: _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads "1e-5" as a string
        except ValueError:
            pass
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(tp, type) and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
    return value


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for old, new in getattr(cls, "KEY_ALIASES", {}).items():  # an old key still read: out -> output_dir,
        if old not in data:  # base_url -> endpoint.base_url
            continue
        head, _, sub = new.partition(".")
        inner = dict(data.get(head) or {}) if sub else dict(data)
        key = sub or head
        if key in inner and inner[key] != data[old]:
            raise ConfigError(f"{where or cls.__name__}: both {old} and {new} are set; {old} is an old name of {new}")
        inner[key] = data[old]
        data = {k: v for k, v in data.items() if k != old}
        data[head] = inner if sub else inner[head]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    return _build(cls, data, "")


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (empty file: {}); ConfigError naming the file otherwise."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return loaded or {}


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Load `cls` from a YAML file (optional) and overrides; raises ConfigError naming the bad key."""
    data = apply_overrides(read_mapping(path) if path is not None else {}, list(overrides))
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path or 'config'}: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


__all__ = ["ConfigError", "apply_overrides", "dump_yaml", "from_dict", "load_config", "to_dict"]
