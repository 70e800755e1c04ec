"""Make a transformers-5 `config.json` readable by transformers 4.x as well (vLLM, verl, LLaMA-Factory).

transformers 5 writes the rotary embedding settings only as `rope_parameters: {rope_theta, rope_type,
...}`. transformers 4.x reads a top-level `rope_theta` (default 10000.0 when absent) and `rope_scaling`
(None, or a dict with `type`/`rope_type` and the type's parameters), and ignores `rope_parameters`, so
a 4.x reader of our models would silently use the wrong RoPE base (SmolLM2: 100000, read as 10000).

    from dianjin.model.legacy_config import add_legacy_keys, legacy_view
    add_legacy_keys(model_dir)                     # after every save_pretrained of a config
    legacy_view(json.loads(cfg_text))              # {"rope_theta": ..., "rope_scaling": ...} as 4.x sees it

`add_legacy_keys` adds `rope_theta` = `rope_parameters["rope_theta"]` and, when the RoPE type is not
"default", `rope_scaling` = `rope_parameters` without `rope_theta`, with `type` = `rope_type` (both
spellings: 4.x before 4.45 reads `type`). For per-layer-type parameters (a dict of dicts keyed by layer
type, e.g. Gemma 3) the full-attention entry is the one 4.x knows. A `text_config` (multimodal models)
gets the same treatment. The rewrite is atomic (temporary file + rename) and idempotent.

transformers 5 reads these keys too (`rope_scaling` replaces `rope_parameters` when present), so when
transformers is importable the result is checked: the config must load in transformers 5 exactly as
before; a legacy key that would change it is left out (and logged).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_THETA = 10000.0  # transformers 4.x's default when config.json has no rope_theta
LEGACY_KEYS = ("rope_theta", "rope_scaling")
SUB_CONFIGS = ("text_config",)  # nested configs that carry their own RoPE settings


def _rope_source(params: Any) -> dict[str, Any] | None:
    """The flat RoPE dict 4.x would get: `params` itself, or its full-attention entry when per layer type."""
    if not isinstance(params, dict) or not params:
        return None
    if all(isinstance(v, dict) or v is None for v in params.values()):  # keyed by layer type
        nested = params.get("full_attention") or next((v for v in params.values() if v), None)
        return nested if isinstance(nested, dict) else None
    return params


def legacy_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    """The legacy keys for one (sub-)config dict: {} when it has no `rope_parameters`;
    `rope_scaling` is None for the default RoPE type."""
    src = _rope_source(cfg.get("rope_parameters"))
    if src is None or src.get("rope_theta") is None:
        return {}
    out: dict[str, Any] = {"rope_theta": float(src["rope_theta"]), "rope_scaling": None}
    rope_type = src.get("rope_type", src.get("type", "default"))
    if rope_type != "default":
        scaling = {k: v for k, v in src.items() if k != "rope_theta"}
        scaling["rope_type"] = scaling["type"] = rope_type
        out["rope_scaling"] = scaling
    return out


def _apply(cfg: dict[str, Any], keys: dict[str, Any]) -> None:
    for k in LEGACY_KEYS:
        cfg.pop(k, None)
    cfg.update({k: v for k, v in keys.items() if v is not None})


def with_legacy_keys(cfg: dict[str, Any], check: bool = True) -> dict[str, Any]:
    """A copy of config dict `cfg` with the legacy keys (top level and sub-configs)."""
    out = copy.deepcopy(cfg)
    targets = [out] + [out[k] for k in SUB_CONFIGS if isinstance(out.get(k), dict)]
    for t in targets:
        if "rope_parameters" in t:
            _apply(t, legacy_keys(t))
    if check and out != cfg:
        before = _as_transformers5(cfg)
        if before is not None and _as_transformers5(out) != before:
            # Fall back: first without rope_scaling (it replaces rope_parameters in 5.x), then untouched.
            for t in targets:
                t.pop("rope_scaling", None)
            if _as_transformers5(out) != before:
                log.warning("legacy RoPE keys would change how transformers 5 reads this config; not added")
                return copy.deepcopy(cfg)
            log.warning("rope_scaling would change how transformers 5 reads this config; only rope_theta added")
    return out


def _as_transformers5(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """How the installed transformers (5.x) reads `cfg` (its `to_dict()`, `type` keys dropped);
    None when transformers or the model type is unavailable."""
    try:
        from transformers import CONFIG_MAPPING
    except ImportError:
        return None
    try:
        cls = CONFIG_MAPPING[cfg["model_type"]]
    except KeyError:
        return None
    try:
        read = cls.from_dict(copy.deepcopy(cfg)).to_dict()
    except Exception as e:  # noqa: BLE001 - a config 5.x cannot read: nothing to protect
        log.debug("transformers cannot read the config (%s); legacy keys not checked", e)
        return None
    read.pop("transformers_version", None)
    return _drop_type(read)


def _drop_type(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _drop_type(v) for k, v in x.items() if k != "type" or not isinstance(v, str)}
    if isinstance(x, list):
        return [_drop_type(v) for v in x]
    return x


def add_legacy_keys(model_dir: str | Path) -> Path:
    """Rewrite `model_dir/config.json` (atomically) with the keys transformers 4.x reads; return its path.
    A no-op when they are already right."""
    path = Path(model_dir) / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    new = with_legacy_keys(cfg)
    if new != cfg:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            # The layout transformers writes: sorted keys, two-space indent, trailing newline.
            tmp.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def legacy_view(cfg: dict[str, Any]) -> dict[str, Any]:
    """What transformers 4.x takes from config dict `cfg`: `rope_theta` (10000.0 when absent) and
    `rope_scaling` (None, or the dict with `rope_type` filled in from `type` as 4.x does)."""
    scaling = cfg.get("rope_scaling")
    if isinstance(scaling, dict):
        scaling = dict(scaling)
        if "type" in scaling:
            scaling.setdefault("rope_type", scaling["type"])
    return {"rope_theta": float(cfg.get("rope_theta", DEFAULT_THETA)), "rope_scaling": scaling or None}
