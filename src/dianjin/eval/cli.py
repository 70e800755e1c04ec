"""`dianjin eval`: run, re-score and compare evaluations (the harness itself is `dianjin.eval.run`).

    dianjin eval run recipes/eval_paper.yaml endpoint.base_url=URL endpoint.model=NAME output_dir=RUN_DIR
    dianjin eval run --base-url URL --model NAME --tasks cflue,finqa --data-dir ../shared/data --output-dir RUN_DIR
    dianjin eval run --model-dir MODEL_DIR --tasks fincalc --data-dir DIR --output-dir RUN_DIR   # in-process batches
    dianjin eval rescore --output-dir RUN_DIR [--judge-base-url URL --judge-model NAME]
    dianjin eval compare RUN_A RUN_B [--output-dir DIR]

`run` takes a YAML config like every other stage: the fields of `dianjin.eval.run.EvalConfig`
(`output_dir`, `tasks` as a list or `a,b`, `data_dir`, `data` {task: file}, `n`, `limit`, `temperature`,
`top_p`, `max_tokens`, `system`, `model_dir`, `local_engine`, `batch_size`, `dtype`, `segment`, `refill`, `progress`,
`n_boot`), with
`endpoint`, `judge` and `agents` as `dianjin.llm.endpoint.EndpointConfig` mappings (`base_url`, `model`,
`api_key_env`, `concurrency`, `timeout` (900 s unless given), `max_retries`, prices, ...). Then
`key.sub=value` overrides (`endpoint.model=x`, `tasks=[cflue,finqa]`, `judge=null`), then the flags, each
the override of one key: `--model` is `endpoint.model`, `--judge-model` is `judge.model`, `--engine` is
`local_engine`, `--output-dir` (alias `--out`) is `output_dir`; `--concurrency`, `--timeout` and
`--max-retries` set those of every endpoint. A config alone, flags alone, or both.

`rescore` takes the same config, overrides and flags (the evaluated endpoint, the agents and the model
directory are ignored: it never calls the model); without `--tasks` it re-scores every task the run
directory holds. `compare` writes compare.md / compare.json to `--output-dir` when given.

The flag form of the previous release (`dianjin eval --base-url ...`, `dianjin eval --rescore --out DIR`,
`dianjin eval --compare A B`) still works for this release, with one deprecation line on stderr that
names the new form.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from dianjin.config import ConfigError, apply_overrides, from_dict, read_mapping
from dianjin.errors import DataError
from dianjin.eval import summarize
from dianjin.eval.backends import ENGINES
from dianjin.eval.run import EVAL_FILE, EvalConfig, _load_eval_file, run_eval
from dianjin.files import redact, redact_logging
from dianjin.llm.client import EndpointConfig, LLMError
from dianjin.model.precision import DTYPES

DEFAULT_TASKS = ["cflue", "finqa", "ccc", "math500", "gpqa"]
ENDPOINTS = ("endpoint", "judge", "agents")  # EvalConfig fields that are EndpointConfig mappings
ENDPOINT_DEFAULTS: dict[str, Any] = {"timeout": 900.0}  # eval's default beside EndpointConfig's (R1-style answers)
PATH_FIELDS = ("output_dir", "data_dir", "model_dir")
EVERY_ENDPOINT = "*"  # a flag key "*.timeout" sets the key of every endpoint configured
NEW_FORMS = {
    "run": "dianjin eval run [CONFIG.yaml] [key.sub=value ...] --base-url URL --model NAME --output-dir DIR",
    "rescore": "dianjin eval rescore --output-dir RUN_DIR [--judge-base-url URL --judge-model NAME]",
    "compare": "dianjin eval compare RUN_A RUN_B [--output-dir DIR]",
}
ERRORS = (DataError, KeyError, ValueError, FileNotFoundError, LLMError)  # ConfigError, CacheError, RunDirError too


# --- config: YAML < key=value overrides < flags ---------------------------------------------------------
def resolve_config(
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    flags: Mapping[str, Any] | None = None,
    *,
    rescore: bool = False,
) -> EvalConfig:
    """The EvalConfig of a YAML file (optional), `key.sub=value` overrides and flags (dotted key -> value, as
    `flag_overrides` makes them; `*.key` sets `key` of every endpoint configured), in that order of precedence.
    A bad key or value is a ConfigError (or a DataError for an endpoint's field) naming the file and field."""
    where = str(config) if config is not None else "command line"
    data = apply_overrides(read_mapping(config) if config is not None else {}, list(overrides))
    every = {k.split(".", 1)[1]: v for k, v in (flags or {}).items() if k.startswith(EVERY_ENDPOINT + ".")}
    for key, value in (flags or {}).items():
        if not key.startswith(EVERY_ENDPOINT + "."):
            *parents, last = key.split(".")
            node = data
            for p in parents:
                if not isinstance(node.get(p), dict):
                    node[p] = {}
                node = node[p]
            node[last] = value
    for name in ENDPOINTS:
        if isinstance(data.get(name), dict):
            data[name].update(every)
    if rescore:  # the saved responses are scored again: nothing generates
        for name in ("endpoint", "agents", "model_dir"):
            data.pop(name, None)
        data["rescore"] = True
    elif data.get("rescore"):
        raise ConfigError(f"{where}: rescore: use `dianjin eval rescore` to re-score a run directory")
    endpoints = {name: _endpoint(data, name, where) for name in ENDPOINTS if data.get(name) is not None}
    for name in ENDPOINTS:
        data.pop(name, None)
    for name in PATH_FIELDS:
        if isinstance(data.get(name), str):
            data[name] = Path(data[name])
    if data.get("output_dir") is None:
        raise ConfigError(f"{where}: output_dir is required: the run directory (output_dir=DIR or --output-dir DIR)")
    tasks = data.get("tasks")
    if isinstance(tasks, str):
        data["tasks"] = [t.strip() for t in tasks.split(",") if t.strip()]
    elif tasks is None:
        data["tasks"] = _stored_tasks(data["output_dir"]) if rescore else list(DEFAULT_TASKS)
    try:
        cfg = from_dict(EvalConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return replace(
        cfg, endpoint=endpoints.get("endpoint"), judge=endpoints.get("judge"), agents=endpoints.get("agents")
    )


def _endpoint(data: dict[str, Any], name: str, where: str) -> EndpointConfig:
    raw = data[name]
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {name}: expected a mapping of endpoint keys (base_url, model, ...), got {raw!r}")
    if not raw.get("base_url") or not raw.get("model"):
        if name == "endpoint" and raw.get("model") and data.get("model_dir") is not None:
            raise ConfigError("--model names a served model; with --model-dir the model is named by its directory")
        flag = "" if name == "endpoint" else f"{name}-"
        raise ConfigError(f"{where}: {name}: base_url and model go together (--{flag}base-url and --{flag}model)")
    return EndpointConfig.from_dict({**ENDPOINT_DEFAULTS, **raw}, where=f"{where}: {name}")


def _stored_tasks(output_dir: Path) -> list[str]:
    tasks = list(_load_eval_file(output_dir)["tasks"])
    if not tasks:
        raise ConfigError(f"{output_dir / EVAL_FILE}: nothing to re-score (no task was run in {output_dir})")
    return tasks


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line as dotted config keys (flags not given are left out)."""
    out: dict[str, Any] = {}
    keys = {
        "output_dir": "output_dir",
        "tasks": "tasks",
        "data_dir": "data_dir",
        "n": "n",
        "limit": "limit",
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_tokens",
        "system": "system",
        "model_dir": "model_dir",
        "engine": "local_engine",
        "batch_size": "batch_size",
        "dtype": "dtype",
        "base_url": "endpoint.base_url",
        "model": "endpoint.model",
        "api_key_env": "endpoint.api_key_env",
        **{f"{e}_{k}": f"{e}.{k}" for e in ("judge", "agents") for k in ("base_url", "model", "api_key_env")},
        **{k: f"{EVERY_ENDPOINT}.{k}" for k in ("concurrency", "timeout", "max_retries")},
    }
    for dest, key in keys.items():
        value = getattr(args, dest, None)
        if value is not None:
            out[key] = value
    for item in getattr(args, "data", None) or []:
        if "=" not in item:
            raise ConfigError(f"--data expects TASK=PATH, got {item!r}")
        task, path = item.split("=", 1)
        out[f"data.{task.strip()}"] = path.strip()
    if getattr(args, "quiet", False):
        out["progress"] = False
    return out


def _split_items(items: Sequence[str]) -> tuple[str | None, list[str]]:
    """CONFIG.yaml (the one item without '=') and the key=value overrides."""
    configs = [i for i in items if "=" not in i]
    if len(configs) > 1:
        raise ConfigError(f"one config file at most, got {', '.join(configs)} (overrides are key.sub=value)")
    return (configs[0] if configs else None), [i for i in items if "=" in i]


# --- parsers -------------------------------------------------------------------------------------------
def _add_items(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "items",
        nargs="*",
        metavar="CONFIG.yaml | key.sub=value",
        help="a YAML config (EvalConfig's fields) and key.sub=value overrides, e.g. endpoint.model=x",
    )


def _add_output(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--output-dir", "--out", dest="output_dir", type=Path, help=f"{what} (--out: the old name)")


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tasks",
        help=f"comma-separated tasks (default: {','.join(DEFAULT_TASKS)}; rescore: the run's); "
        "also cflue_oe, fincalc, ccc_agents",
    )
    p.add_argument("--data-dir", type=Path, help="benchmark files in the layout of ../shared/data")
    p.add_argument("--data", action="append", metavar="TASK=PATH", help="one task's data file")
    p.add_argument(
        "--n",
        type=int,
        help="samples per item (GPQA: option shuffles), for mean@k and pass@k "
        "(default 1, or as the run directory's earlier run)",
    )
    p.add_argument("--limit", type=int, help="only the first N items of each task")


def _add_http(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrency", type=int, help="HTTP requests in flight, per endpoint (default 64)")
    p.add_argument("--timeout", type=float, help="seconds per request attempt (default 900)")
    p.add_argument("--max-retries", type=int, help="retries per request (default 6)")


def _add_endpoint(p: argparse.ArgumentParser, prefix: str, help_: str) -> None:
    p.add_argument(f"--{prefix}-base-url", help=help_)
    p.add_argument(f"--{prefix}-model")
    p.add_argument(f"--{prefix}-api-key-env")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    source.add_argument("--model-dir", type=Path, help="a local HF model directory, generated with in-process")
    p.add_argument("--model", help="model name sent in each request (with --base-url)")
    p.add_argument(
        "--engine", choices=ENGINES, help="--model-dir engine (default auto: vLLM on a GPU, else transformers)"
    )
    p.add_argument("--batch-size", type=int, help="--model-dir: requests generating at a time (default 16)")
    p.add_argument(
        "--dtype", choices=DTYPES, help="--model-dir: dtype to generate in (default auto: bfloat16 where native)"
    )
    p.add_argument("--api-key-env", help="NAME of the environment variable holding the API key")
    _add_selection(p)
    _add_output(p, "the run directory")
    p.add_argument("--temperature", type=float, help="override every task's pinned temperature (0.6)")
    p.add_argument("--top-p", type=float, help="override every task's pinned top_p (0.95)")
    p.add_argument("--max-tokens", type=int, help="override every task's pinned max_tokens")
    p.add_argument("--system", help="a system message before every prompt (default: none)")
    _add_http(p)
    _add_endpoint(p, "judge", "judge endpoint for FinQA and CFLUE-OE")
    _add_endpoint(p, "agents", "endpoint of the ccc_agents workflow (default: --base-url)")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _parser(cmd: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"dianjin eval {cmd}".strip(),
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser(cmd: str) -> argparse.ArgumentParser:
    """The parser of `dianjin eval run`, `rescore` or `compare` ("" : the flag form of the previous release)."""
    if cmd == "compare":
        p = _parser(cmd, "Paired comparison of two runs (B - A) per task.")
        p.add_argument("runs", nargs=2, type=Path, metavar="RUN", help="RUN_A RUN_B")
        _add_output(p, "write compare.md and compare.json here")
        return p
    if cmd == "rescore":
        p = _parser(cmd, "Re-score a run directory's saved responses (and judge them); never calls the model.")
        _add_items(p)
        _add_output(p, "the run directory")
        _add_selection(p)
        _add_http(p)
        _add_endpoint(p, "judge", "judge endpoint for FinQA and CFLUE-OE")
        p.add_argument("--quiet", action="store_true", help="no progress line")
        return p
    p = _parser(cmd, "\n\n".join((__doc__ or "").split("\n\n")[:3]))
    if cmd == "run":
        _add_items(p)
    _add_run_options(p)
    if cmd == "":
        p.add_argument("--rescore", action="store_true", help="now: dianjin eval rescore")
        p.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"), help="now: dianjin eval compare")
    return p


def run_config(argv: Sequence[str]) -> EvalConfig:
    """The EvalConfig that `dianjin eval run ARGV` runs (nothing is run)."""
    args = build_parser("run").parse_intermixed_args(list(argv))
    config, overrides = _split_items(args.items)
    return resolve_config(config, overrides, flag_overrides(args))


def rescore_config(argv: Sequence[str]) -> EvalConfig:
    """The EvalConfig that `dianjin eval rescore ARGV` runs (nothing is run)."""
    args = build_parser("rescore").parse_intermixed_args(list(argv))
    config, overrides = _split_items(args.items)
    return resolve_config(config, overrides, flag_overrides(args), rescore=True)


# --- commands ------------------------------------------------------------------------------------------
def _evaluate(cfg: EvalConfig) -> int:
    if not cfg.rescore and cfg.endpoint is None and cfg.model_dir is None:
        raise ConfigError(
            "an endpoint (--base-url and --model, or endpoint: in the config) or a local model (--model-dir) is needed"
        )
    summary = run_eval(cfg)
    print(summarize.results_table([(summary["settings"].get("model") or "model", summary)]))
    bad = {t: s for t, s in summary["tasks"].items() if s["errors"] or s["missing"]}
    for t, s in bad.items():
        print(
            f"dianjin eval: {t}: {s['errors']} failed requests, {s['missing']} missing; re-run to retry them",
            file=sys.stderr,
        )
    print(f"wrote {cfg.output_dir / 'summary.json'} and {cfg.output_dir / 'summary.md'}", file=sys.stderr)
    return 1 if bad else 0


def _compare(run_a: Path, run_b: Path, output_dir: Path | None) -> int:
    print(summarize.write_comparison(run_a, run_b, out=output_dir))
    return 0


def _legacy(argv: list[str]) -> int:
    """The flag form of the previous release: one deprecation line, then as the new form."""
    kind = "compare" if "--compare" in argv else "rescore" if "--rescore" in argv else "run"
    print(
        f"dianjin eval: the flag form is deprecated and goes in the next release; use `{NEW_FORMS[kind]}`",
        file=sys.stderr,
    )
    args = build_parser("").parse_args(argv)
    if args.compare:
        return _compare(args.compare[0], args.compare[1], args.output_dir)
    return _evaluate(resolve_config(None, (), flag_overrides(args), rescore=args.rescore))


def usage() -> str:
    lines = ["usage: dianjin eval {run,rescore,compare} ...", ""]
    lines += [f"  {form}" for form in NEW_FORMS.values()]
    lines += ["", "Run `dianjin eval COMMAND --help` for its options (see dianjin.eval.cli)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    redact_logging()
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "run":
            return _evaluate(run_config(rest))
        if cmd == "rescore":
            return _evaluate(rescore_config(rest))
        if cmd == "compare":
            args = build_parser("compare").parse_args(rest)
            return _compare(args.runs[0], args.runs[1], args.output_dir)
        if cmd.startswith("-"):
            return _legacy(argv)
        print(f"dianjin eval: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return 2
    except ERRORS as e:
        print(f"dianjin eval: {redact(str(e.args[0] if isinstance(e, KeyError) else e))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
