"""LLM flows: an item's work as a generator of request steps, the drivers that answer them, and the
packaged prompts the flows send.

A *flow* is a generator that yields `Step(role, stage, requests)` and receives the list of
`ChatResult`s, so the same logic runs under an async driver (`drive`: the data pipeline and the
evaluation, thousands of items in flight) and a blocking one (`drive_sync`, e.g.
`dianjin.tasks.ccc_agents.check_dialogue`). A request that fails for good (retries exhausted, a
4xx) raises `Unfinished`: the item is not recorded, and a re-run retries it (everything answered so
far comes from the cache). `role` names the endpoint ("teacher", "judge", "agent", ...).

Used by the data stages (`dianjin.data`: filter, convert, distill, CCC) and by the CCC multi-agent
workflow (`dianjin.tasks.ccc_agents`), which the evaluation runs as a system.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, NamedTuple, TypeVar

from dianjin.llm.client import ChatRequest, ChatResult, LLMClient, LLMError
from dianjin.tasks.base import Messages

T = TypeVar("T")


class Step(NamedTuple):
    """Requests a flow wants answered: `role` names the endpoint ("teacher", "judge", ...)."""

    role: str
    stage: str
    requests: list[ChatRequest]


Flow = Generator[Step, list[ChatResult], T]


class Unfinished(Exception):
    """An LLM request failed for good; the item is left undone for a re-run."""


# --- prompts -------------------------------------------------------------------------------------
@cache
def prompt_template(name: str) -> str:
    """The packaged prompt `dianjin/prompts/data_<name>.txt`."""
    return resources.files("dianjin").joinpath("prompts", f"data_{name}.txt").read_text(encoding="utf-8")


def fill(template: str, /, **values: str) -> str:
    """The prompt with `{key}` placeholders replaced in one pass (text inside values is never re-substituted)."""
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}")
    return pattern.sub(lambda m: str(values[m.group(1)]), prompt_template(template))


def user(content: str) -> Messages:
    return [{"role": "user", "content": content}]


# --- asking ---------------------------------------------------------------------------------------
class Answer(NamedTuple):
    """The accepted result of one question (None if no sample was accepted) and a record per request."""

    result: ChatResult | None
    tries: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return (self.result.content or "") if self.result is not None else ""


def usage(res: ChatResult) -> dict[str, Any]:
    """What the logs keep of one answer (never its latency or cache flag: logs must be reproducible)."""
    return {
        "finish_reason": res.finish_reason,
        "prompt_tokens": res.prompt_tokens,
        "completion_tokens": res.completion_tokens,
        "reasoning_tokens": res.reasoning_tokens,
    }


def ask_many(
    role: str,
    questions: list[Messages],
    *,
    stage: str,
    sample: int = 0,
    max_samples: int = 3,
    accept: Callable[[ChatResult], bool] | None = None,
    extra: dict[str, Any] | None = None,
) -> Flow[list[Answer]]:
    """Ask several questions in parallel; a truncated or unaccepted answer is asked again with the
    next sample index, up to `max_samples` rounds."""
    done: list[ChatResult | None] = [None] * len(questions)
    tries: list[list[dict[str, Any]]] = [[] for _ in questions]
    pending = list(range(len(questions)))
    for r in range(max_samples):
        if not pending:
            break
        reqs = [ChatRequest(questions[i], sample=sample + r, extra=extra) for i in pending]
        results = yield Step(role, stage, reqs)
        still = []
        for i, res in zip(pending, results):
            good = res.ok and (accept is None or accept(res))
            tries[i].append({"sample": sample + r, **usage(res), "accepted": good})
            if good:
                done[i] = res
            else:
                still.append(i)
        pending = still
    return [Answer(d, t) for d, t in zip(done, tries)]


def ask(role: str, messages: Messages, **kw: Any) -> Flow[Answer]:
    """`ask_many` for one question."""
    return (yield from ask_many(role, [messages], **kw))[0]


def calls_and_tokens(tries: Iterable[dict[str, Any]]) -> tuple[int, int]:
    tries = list(tries)
    return len(tries), sum(t["prompt_tokens"] + t["completion_tokens"] for t in tries)


# --- drivers --------------------------------------------------------------------------------------
async def _one(client: LLMClient, req: ChatRequest, stage: str) -> ChatResult:
    try:
        return await client.chat(req, stage=stage)
    except LLMError as e:
        raise Unfinished(str(e)) from None


async def drive(flow: Flow[T], clients: Mapping[str, LLMClient]) -> T:
    """Run a flow on async clients (role -> client); raises Unfinished when a request fails for good."""
    try:
        step = next(flow)
        while True:
            client = clients[step.role]
            results = await asyncio.gather(
                *(_one(client, r, step.stage) for r in step.requests), return_exceptions=True
            )
            for r in results:
                if isinstance(r, BaseException):
                    raise r
            step = flow.send(list(results))  # type: ignore[arg-type]
    except StopIteration as stop:
        return stop.value
    finally:
        flow.close()


def drive_sync(flow: Flow[T], clients: Mapping[str, Any]) -> T:
    """Run a flow on blocking clients (`dianjin.llm.client.SyncClient`, role -> client)."""
    try:
        step = next(flow)
        while True:
            results = clients[step.role].map(step.requests, stage=step.stage, progress=False)
            failed = [r.error for r in results if r.error]
            if failed:
                raise Unfinished(failed[0])
            step = flow.send(results)
    except StopIteration as stop:
        return stop.value
    finally:
        flow.close()


__all__ = [
    "Answer",
    "Flow",
    "Step",
    "Unfinished",
    "ask",
    "ask_many",
    "calls_and_tokens",
    "drive",
    "drive_sync",
    "fill",
    "prompt_template",
    "usage",
    "user",
]
