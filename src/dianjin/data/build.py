"""`dianjin data`: build verified reasoning data (DianJin-R1-Data) from any teacher LLM.

    dianjin data build recipes/data_offline.yaml [key.sub=value ...]     # every stage, in order
    dianjin data STAGE recipes/data_paper.yaml [key.sub=value ...]       # one stage

Stages (each reads the previous stage's file in `output_dir`):

| stage    | reads                         | appends (keyed by id)  | writes atomically               |
|----------|-------------------------------|------------------------|---------------------------------|
| sources  | the configured files          | -                      | sources.jsonl, released.jsonl   |
| filter   | sources.jsonl                 | filter.log.jsonl       | filtered.jsonl                  |
| convert  | filtered.jsonl                | convert.log.jsonl      | items.jsonl                     |
| distill  | items.jsonl                   | distill.log.jsonl      | sft.jsonl, rl.jsonl             |
| ccc      | items.jsonl (ccc items)       | ccc.log.jsonl          | sft.jsonl, rl.jsonl             |
| decontam | sft.jsonl, rl.jsonl           | -                      | sft.jsonl, rl.jsonl, decontam.json |
| export   | sft.jsonl, rl.jsonl           | -                      | (dianjin.data.export)           |
| stats    | sft.jsonl, rl.jsonl           | -                      | (dianjin.data.stats)            |

Resuming: an LLM stage appends one line per finished item to its log and skips ids already there,
so it can be killed at any moment and re-run; every response is also in `cache.sqlite` (committed as
it arrives), so a re-run pays for nothing twice. Final files are rebuilt from the logs in source order
and written atomically, so the output does not depend on completion order, faults or restarts. An
item whose request failed for good (retries exhausted) is not logged; the command ends with exit
code 1 and says how many items are unfinished: re-run it. A log holds decisions made under the config
of its run: to redo a stage with other settings, delete its log (or use a new output_dir).

Also in `output_dir`: config.yaml and meta.json (`dianjin.rundir`), ledger.json (calls, tokens and
estimated cost per stage and model for this invocation; earlier invocations' ledgers, a killed one's
included, are appended to ledger_history.jsonl), build.json (what each stage did). API keys are read
from the environment variables named by `api_key_env` and never written anywhere; URL credentials
are redacted in every file (`dianjin.files.redact`).

One invocation per `output_dir` at a time (`dianjin.rundir.RunLock`): a second one is refused, naming
the directory and the pid of the first. Nothing in `output_dir` is written before the preflight (the
config, the endpoints and keys needed, the source files) passes.

Teachers: an OpenAI-compatible endpoint (`teacher:`, e.g. deepseek-reasoner) with a judge
(`judge:`, e.g. gpt-4o) for open-ended answers, conversion, filtering and the CCC agents; or the
offline reference teacher (`reference_teacher: true`, `dianjin.data.reference`), a labelled baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dianjin.config import ConfigError, from_dict, load_config
from dianjin.data.ccc_agents import CccConfig, ccc_flow
from dianjin.data.convert import ConvertConfig, convert_flow, selected
from dianjin.data.distill import DistillConfig, Flow, RunSummary, distill_flow, run_items
from dianjin.data.filter import FilterConfig, filter_flow
from dianjin.data.reference import reference_flow
from dianjin.data.sources import SourceSpec, check_sources, load_sources
from dianjin.errors import DataError
from dianjin.files import JsonlAppender, JsonlError, atomic_write_json, iter_jsonl, redact, redact_logging, write_jsonl
from dianjin.llm.cache import CacheError, ResponseCache
from dianjin.llm.client import EndpointConfig, LLMClient, LLMError
from dianjin.llm.ledger import Ledger
from dianjin.rundir import RunDir, RunDirError, RunLock
from dianjin.tasks.base import Example

log = logging.getLogger("dianjin.data")


# --- config -------------------------------------------------------------------------------------------
@dataclass
class DecontamConfig:
    # evaluation sets whose n-grams training rows must not share: paths, or {task, path} mappings
    eval_sets: list[str | dict[str, str]] = field(default_factory=list)
    n: int = 8
    options: dict[str, Any] = field(default_factory=dict)  # more keyword arguments of decontam.run (min_coverage, ...)


@dataclass
class StatsConfig:
    tokenizer: str | None = None  # HF tokenizer name or path for the token table (None: the stats module's default)


@dataclass
class BuildConfig:
    """The whole `dianjin data` config (recipes/data_*.yaml)."""

    output_dir: str
    sources: list[SourceSpec] = field(default_factory=list)
    teacher: dict[str, Any] | None = None  # dianjin.llm.client.EndpointConfig keys (base_url, model, api_key_env, ...)
    judge: dict[str, Any] | None = None  # same keys
    reference_teacher: bool = False  # the offline baseline teacher instead of `teacher`
    system_prompt: str | None = None  # system message of SFT rows and RL prompts (None: the chat template's default)
    workers: int | None = None  # items in flight per stage (None: the largest endpoint concurrency used)
    progress: bool | None = None  # progress lines (None: on)
    skip: list[str] = field(default_factory=list)  # stage names `build` leaves out
    filter: FilterConfig = field(default_factory=FilterConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    ccc: CccConfig = field(default_factory=CccConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    export: dict[str, Any] = field(default_factory=dict)  # passed to dianjin.data.export.run (its own keys)
    stats: StatsConfig = field(default_factory=StatsConfig)


def endpoints(cfg: BuildConfig) -> dict[str, EndpointConfig]:
    """The configured endpoints, checked (DataError names the key)."""
    out = {}
    for name in ("teacher", "judge"):
        raw = getattr(cfg, name)
        if raw is not None:
            out[name] = EndpointConfig.from_dict(dict(raw), where=name)
    return out


# --- the build ---------------------------------------------------------------------------------------
class _Clients(Mapping):
    """role -> LLMClient, created on first use (an offline run never builds one, nor needs a key)."""

    def __init__(self, build: Build):
        self.build = build
        self.made: dict[str, LLMClient] = {}

    def __getitem__(self, role: str) -> LLMClient:
        name = self.build.role_endpoint(role)
        if name not in self.made:
            self.made[name] = LLMClient(
                self.build.endpoint(name), cache=self.build.cache(), ledger=self.build.ledger, progress=False
            )
        return self.made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(("teacher", "judge", "agent", "refine"))

    def __len__(self) -> int:
        return 4

    async def aclose(self) -> None:
        for client in self.made.values():
            await client.aclose()


class Build:
    """One invocation of `dianjin data` on one output directory; `run` writes there (after its preflight)."""

    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg
        if not isinstance(cfg.output_dir, str) or not cfg.output_dir.strip():
            raise ConfigError(f"output_dir is empty ({cfg.output_dir!r}): set output_dir=DIR, the run directory")
        self.out = Path(cfg.output_dir)
        self.endpoints = endpoints(cfg)
        self.ledger = Ledger()  # saved to output_dir/ledger.json once `start` has taken the directory
        self._lock: RunLock | None = None
        self._cache: ResponseCache | None = None
        self.results: dict[str, Any] = {}
        self.unfinished: dict[str, int] = {}

    def start(self) -> None:
        """Take the output directory (one writer at a time), write config.yaml and meta.json, and move
        the ledger an earlier (maybe killed) invocation left to ledger_history.jsonl."""
        if self._lock is not None:
            return
        self._lock = RunLock.acquire(self.out, "dianjin data")
        RunDir.create(self.out, self.cfg)
        ledger_path = self.out / "ledger.json"
        if ledger_path.exists():  # keep what earlier (maybe killed) invocations paid
            try:
                previous = json.loads(ledger_path.read_text(encoding="utf-8"))
                with JsonlAppender(self.out / "ledger_history.jsonl") as f:
                    f.write(
                        {
                            "saved": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ledger_path.stat().st_mtime)),
                            **previous,
                        }
                    )
            except ValueError:
                log.warning("%s: unreadable ledger from an earlier run, not kept", ledger_path)
        self.ledger.path = ledger_path
        self.ledger.save()  # now empty: killed before its first autosave, this run leaves no stale copy behind

    # endpoints and files -----------------------------------------------------------------------------
    def role_endpoint(self, role: str) -> str:
        return {"agent": self.cfg.ccc.agent_endpoint, "refine": self.cfg.ccc.refine_endpoint}.get(role, role)

    def endpoint(self, name: str) -> EndpointConfig:
        if name not in self.endpoints:
            raise ConfigError(
                f"this stage needs the {name!r} endpoint: set {name}.base_url and {name}.model "
                f"(and {name}.api_key_env) in the config"
            )
        return self.endpoints[name]

    def require(self, *roles: str) -> None:
        """Fail before any work when a needed endpoint or its API key is missing."""
        for role in roles:
            try:
                self.endpoint(self.role_endpoint(role)).api_key()
            except LLMError as e:
                raise ConfigError(str(e)) from None

    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(self.out / "cache.sqlite")
        return self._cache

    def path(self, name: str) -> Path:
        return self.out / name

    def read(self, name: str, stage: str) -> list[dict[str, Any]]:
        path = self.path(name)
        if not path.exists():
            raise ConfigError(f"{path} is missing: run the {stage!r} stage first (or `dianjin data build`)")
        return list(iter_jsonl(path))

    def read_log(self, name: str) -> dict[str, dict[str, Any]]:
        """A stage log as id -> record (the first record of an id wins)."""
        out: dict[str, dict[str, Any]] = {}
        path = self.path(name)
        if path.exists():
            for rec in iter_jsonl(path):
                out.setdefault(rec["id"], rec)
        return out

    def teacher_label(self) -> str:
        return self.endpoint("teacher").model

    def workers(self, roles: tuple[str, ...]) -> int:
        if self.cfg.workers:
            return self.cfg.workers
        return max([self.endpoint(self.role_endpoint(r)).concurrency for r in roles] or [1])

    # running flows ----------------------------------------------------------------------------------
    def run_flows(
        self,
        stage: str,
        items: list[Example],
        make_flow: Callable[[Example], Flow[dict[str, Any]]],
        log_name: str,
        roles: tuple[str, ...] = (),
    ) -> RunSummary:
        """Run `make_flow(item)` for every item not yet in the stage log; append each result as it finishes."""
        self.require(*roles)
        done = self.read_log(log_name)
        todo = [ex for ex in items if ex["id"] not in done]
        log.info(
            "%s: %d items, %d done in an earlier run, %d to go", stage, len(items), len(items) - len(todo), len(todo)
        )
        if not todo:
            return RunSummary()
        workers = self.workers(roles)
        with JsonlAppender(self.path(log_name)) as out:
            summary = asyncio.run(self._run(stage, todo, make_flow, workers, lambda _item, rec: out.write(rec)))
        if summary.unfinished:
            self.unfinished[stage] = summary.unfinished
            log.warning(
                "%s: %d items unfinished (requests failed for good), e.g. %s; re-run to retry them",
                stage,
                summary.unfinished,
                "; ".join(summary.errors[:3]),
            )
        return summary

    async def _run(
        self,
        stage: str,
        todo: list[Example],
        make_flow: Callable[[Example], Flow[Any]],
        workers: int,
        on_done: Callable[[Example, Any], None],
    ) -> RunSummary:
        clients = _Clients(self)
        try:
            return await run_items(
                todo, make_flow, clients, stage=stage, workers=workers, on_done=on_done, progress=self.cfg.progress
            )
        finally:
            await clients.aclose()

    # stages ------------------------------------------------------------------------------------------------
    def stage_sources(self) -> dict[str, Any]:
        if not self.cfg.sources:
            raise ConfigError("no sources: set `sources` to a list of {task, path} entries")
        loaded = load_sources(self.cfg.sources)
        write_jsonl(self.path("sources.jsonl"), loaded.examples)
        write_jsonl(self.path("released.jsonl"), loaded.sft_rows)
        counts: dict[str, int] = {}
        for ex in loaded.examples:
            counts[ex["task"]] = counts.get(ex["task"], 0) + 1
        return {
            "examples": len(loaded.examples),
            "by_task": counts,
            "released_sft": len(loaded.sft_rows),
            "released_skipped": len(loaded.problems),
        }

    def stage_filter(self) -> dict[str, Any]:
        items = self.read("sources.jsonl", "sources")
        fc = self.cfg.filter
        roles = ("judge",) if fc.ambiguity and any(ex["task"] in fc.tasks for ex in items) else ()
        self.run_flows("filter", items, lambda ex: filter_flow(ex, fc), "filter.log.jsonl", roles)
        decisions = self.read_log("filter.log.jsonl")
        kept = [ex for ex in items if decisions.get(ex["id"], {}).get("keep")]
        write_jsonl(self.path("filtered.jsonl"), kept)
        pending = sum(ex["id"] not in decisions for ex in items)
        return {"kept": len(kept), "dropped": len(items) - len(kept) - pending, "pending": pending}

    def stage_convert(self) -> dict[str, Any]:
        items = self.read("filtered.jsonl", "filter")
        cc = self.cfg.convert
        chosen = [ex for ex in items if selected(ex, cc)]
        if chosen:
            self.run_flows("convert", chosen, lambda ex: convert_flow(ex, cc), "convert.log.jsonl", ("judge",))
        results = self.read_log("convert.log.jsonl") if chosen else {}
        chosen_ids = {ex["id"] for ex in chosen}
        out: list[Example] = []
        stats = {"converted": 0, "failed": 0, "pending": 0}
        for ex in items:
            rec = results.get(ex["id"])
            if ex["id"] not in chosen_ids:
                out.append(ex)
            elif rec is None:
                stats["pending"] += 1
            elif rec["ok"]:
                stats["converted"] += 1
                out += [ex, rec["example"]] if cc.keep_mcq else [rec["example"]]
            else:
                stats["failed"] += 1
                out.append(ex)  # not convertible: stays a multiple-choice item
        write_jsonl(self.path("items.jsonl"), out)
        return {"items": len(out), **stats}

    def by_ccc_workflow(self, ex: Example) -> bool:
        return not self.cfg.reference_teacher and self.cfg.ccc.enabled and ex["task"] == "ccc"

    def stage_distill(self) -> dict[str, Any]:
        items = self.read("items.jsonl", "convert")
        system = self.cfg.system_prompt
        if self.cfg.reference_teacher:
            self.run_flows("distill", items, lambda ex: reference_flow(ex, system=system), "distill.log.jsonl")
        else:
            dc = self.cfg.distill
            todo = [ex for ex in items if not self.by_ccc_workflow(ex)]
            judged = any(ex["task"] in dc.judge_tasks or (dc.reasoning_check and ex.get("analysis")) for ex in todo)
            roles = ("teacher", "judge") if judged else ("teacher",)
            if todo:
                teacher = self.teacher_label()
                self.run_flows(
                    "distill",
                    todo,
                    lambda ex: distill_flow(ex, dc, teacher=teacher, system=system),
                    "distill.log.jsonl",
                    roles,
                )
        return self.assemble()

    def stage_ccc(self) -> dict[str, Any]:
        items = [ex for ex in self.read("items.jsonl", "convert") if self.by_ccc_workflow(ex)]
        if not items:
            log.info(
                "ccc: nothing to do (%s)",
                "reference teacher"
                if self.cfg.reference_teacher
                else "ccc.enabled is false"
                if not self.cfg.ccc.enabled
                else "no ccc items",
            )
            return self.assemble()
        cc = self.cfg.ccc
        label = (
            f"ccc-agents:{self.endpoint(self.role_endpoint('agent')).model}"
            f"+refine:{self.endpoint(self.role_endpoint('refine')).model}"
        )
        self.run_flows(
            "ccc",
            items,
            lambda ex: ccc_flow(ex, cc, teacher=label, system=self.cfg.system_prompt),
            "ccc.log.jsonl",
            ("agent", "refine"),
        )
        result = self.assemble()
        calls = [rec["calls"] for rec in self.read_log("ccc.log.jsonl").values()]
        result["ccc_calls_per_item"] = round(sum(calls) / len(calls), 2) if calls else 0
        return result

    def assemble(self) -> dict[str, Any]:
        """sft.jsonl and rl.jsonl from the released rows and the stage logs, in source order."""
        items = self.read("items.jsonl", "convert")
        logs = {"distill": self.read_log("distill.log.jsonl"), "ccc": self.read_log("ccc.log.jsonl")}
        sft = list(iter_jsonl(self.path("released.jsonl"))) if self.path("released.jsonl").exists() else []
        rl: list[dict[str, Any]] = []
        pending = 0
        for ex in items:
            rec = logs["ccc" if self.by_ccc_workflow(ex) else "distill"].get(ex["id"])
            if rec is None:
                pending += 1
            else:
                (sft if rec["pool"] == "sft" else rl).append(rec["row"])
        write_jsonl(self.path("sft.jsonl"), sft)
        write_jsonl(self.path("rl.jsonl"), rl)
        return {"sft": len(sft), "rl": len(rl), "pending": pending}

    def finals(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self.read("sft.jsonl", "distill"), self.read("rl.jsonl", "distill")

    def stage_decontam(self) -> dict[str, Any]:
        sft, rl = self.finals()
        mod = _optional("dianjin.data.decontam", "decontam")
        if mod is None:
            return {"skipped": "module missing"}
        dc = self.cfg.decontam
        eval_sets = [Path(p) if isinstance(p, str) else p for p in dc.eval_sets]
        kept_sft, kept_rl, report = mod.run(sft, rl, eval_sets, n=dc.n, **dc.options)
        write_jsonl(self.path("sft.jsonl"), kept_sft)
        write_jsonl(self.path("rl.jsonl"), kept_rl)
        atomic_write_json(self.path("decontam.json"), report)
        return {"sft_dropped": len(sft) - len(kept_sft), "rl_dropped": len(rl) - len(kept_rl)}

    def stage_export(self) -> dict[str, Any]:
        sft, rl = self.finals()
        mod = _optional("dianjin.data.export", "export")
        if mod is None:
            return {"skipped": "module missing"}
        cfg_export: Any = dict(self.cfg.export)
        if hasattr(mod, "ExportConfig"):  # typed, if the export module declares its config
            known = {f.name for f in dataclasses.fields(mod.ExportConfig)}
            facts = {
                "teacher": "reference (offline baseline)"
                if self.cfg.reference_teacher
                else (self.cfg.teacher or {}).get("model"),
                "judge": (self.cfg.judge or {}).get("model"),
                "sources": [s.path or f"{s.task} (generated)" for s in self.cfg.sources],
            }
            for key, value in facts.items():  # the dataset card states what built the data
                if key in known and value:
                    cfg_export.setdefault(key, value)
            cfg_export = from_dict(mod.ExportConfig, cfg_export)
        paths = mod.run(self.out, sft, rl, cfg_export)
        return {k: str(v) for k, v in dict(paths).items()}

    def stage_stats(self) -> dict[str, Any]:
        sft, rl = self.finals()
        mod = _optional("dianjin.data.stats", "stats")
        if mod is None:
            return {"skipped": "module missing"}
        return dict(mod.run(self.out, sft, rl, self.cfg.stats.tokenizer))

    # driver ---------------------------------------------------------------------------------------
    def preflight(self, stages: list[str]) -> None:
        """Fail before any work when a stage surely needs an endpoint (or key) that is missing; needs
        that depend on the items (judge for open answers, CCC agents) are checked by their stage."""
        cfg = self.cfg
        needs = {
            "filter": ("judge",) if cfg.filter.ambiguity else (),
            "convert": ("judge",) if cfg.convert.enabled else (),
            "distill": () if cfg.reference_teacher else ("teacher",),
        }
        if "sources" in stages:
            if not cfg.sources:
                raise ConfigError("no sources: set `sources` to a list of {task, path} entries")
            check_sources(cfg.sources)
        for stage in stages:
            self.require(*needs.get(stage, ()))

    def run(self, stages: list[str]) -> bool:
        """Check, take the output directory, then run the stages in order; True when nothing is left unfinished."""
        self.preflight(stages)
        self.start()
        t0 = time.monotonic()
        for name in stages:
            t = time.monotonic()
            self.results[name] = STAGES[name](self)
            log.info("%s: %s (%.1fs)", name, json.dumps(self.results[name], ensure_ascii=False), time.monotonic() - t)
        complete = not self.unfinished
        atomic_write_json(
            self.path("build.json"),
            {
                "stages": self.results,
                "unfinished": self.unfinished,
                "complete": complete,
                "seconds": round(time.monotonic() - t0, 2),
                "ledger_total": self.ledger.to_json()["total"],
            },
        )
        return complete

    def close(self) -> None:
        if self.ledger.rows:
            print(self.ledger.table(), file=sys.stderr)
        if self._lock is not None:  # nothing is written for an invocation that never started
            self.ledger.save()
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _optional(module: str, stage: str) -> Any:
    """An optional stage module (written separately); None, with a log line, when it is not installed."""
    if importlib.util.find_spec(module) is None:
        log.warning("%s: %s is not available; stage skipped", stage, module)
        return None
    return importlib.import_module(module)


STAGES: dict[str, Callable[[Build], dict[str, Any]]] = {
    "sources": Build.stage_sources,
    "filter": Build.stage_filter,
    "convert": Build.stage_convert,
    "distill": Build.stage_distill,
    "ccc": Build.stage_ccc,
    "decontam": Build.stage_decontam,
    "export": Build.stage_export,
    "stats": Build.stage_stats,
}


# --- command line -----------------------------------------------------------------------------------
def _setup_logging(quiet: bool) -> None:
    """Log lines on stderr when run as a command (an embedding program's logging is left alone)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
        logging.getLogger("dianjin.llm.client").setLevel(logging.WARNING)  # per-retry lines are noise at scale
        redact_logging()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dianjin data",
        description="Build verified reasoning data (DianJin-R1-Data).",
        epilog="example: dianjin data build recipes/data_paper.yaml output_dir=runs/data judge.model=gpt-4o-mini",
    )
    parser.add_argument("stage", choices=["build", *STAGES], help="`build` runs every stage in order")
    parser.add_argument("config", help="YAML config (recipes/data_*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. output_dir=runs/x")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the ledger")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    _setup_logging(args.quiet)
    try:
        cfg = load_config(BuildConfig, args.config, args.overrides)
        unknown = sorted(set(cfg.skip) - set(STAGES))
        if unknown:
            raise ConfigError(f"skip: unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
        build = Build(cfg)
    except (ConfigError, DataError) as e:
        print(f"dianjin data: error: {redact(str(e))}", file=sys.stderr)
        return 2
    stages = [s for s in STAGES if s not in cfg.skip] if args.stage == "build" else [args.stage]
    try:
        complete = build.run(stages)
    except (ConfigError, DataError, JsonlError, RunDirError, CacheError) as e:
        print(f"dianjin data: error: {redact(str(e))}", file=sys.stderr)
        return 2
    finally:
        build.close()
    if not complete:
        print(
            f"dianjin data: unfinished items {build.unfinished}: re-run the same command to retry them "
            f"(answers received so far are cached in {build.out / 'cache.sqlite'})",
            file=sys.stderr,
        )
        return 1
    print(f"dianjin data: done; outputs in {build.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
