"""What every benchmark task provides, and the one scoring routine they all share.

A task turns its real file format into examples (plain dicts with at least `id`, `task`,
`question`, `gold`), renders the chat prompt, extracts a prediction from free text and checks it
against the gold. `Task.score` wires those together the same way for data verification, the RL
reward (mode="reward": strict format, answer taken from inside `<answer>`) and evaluation
(mode="eval": lenient extraction), so the three never drift.

`read_text` and `jsonl_records` are the file readers the task loaders (and the data and training
readers built on them) share, so an unreadable file or a bad JSONL line is reported the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from dianjin import answer as fmt
from dianjin.errors import DataError, Record  # noqa: F401  # re-exported for the task modules

Example = dict[str, Any]
Messages = list[dict[str, str]]
# A judge takes chat messages and returns the judge model's reply text.
Judge = Callable[[Messages], str]
Mode = Literal["eval", "reward"]


def read_text(path: str | Path) -> str:
    """A data file's text (a UTF-8 BOM is dropped); DataError when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, None, None, f"cannot read: {e}") from None


def jsonl_records(path: str | Path, text: str | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, record) for each non-blank line of a JSONL file, or of its `text` when already read.

    Lines end at a newline only (`read_text` has turned CRLF into it), not at the other separators
    `str.splitlines` knows: U+2028 may stand unescaped inside a JSON string. A bad line is a
    DataError naming the file and line; records are not checked further (any JSON value).
    """
    for n, line in enumerate((read_text(path) if text is None else text).split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, n, None, f"invalid JSON: {e.msg} (column {e.colno})") from None
        except (RecursionError, ValueError) as e:  # nested too deep; an integer over int_max_str_digits
            raise DataError(path, n, None, f"unreadable JSON: {str(e)[:120]}") from None
        yield n, rec


@dataclass(frozen=True)
class Verdict:
    """The outcome of scoring one response.

    correct: True/False, or None when it cannot be verified (no judge, unparseable gold).
    pred: the extracted, normalised prediction (None when nothing was found).
    format_ok: the strict format gate (see `dianjin.answer.parse_strict`).
    reason: a short human-readable explanation.
    """

    correct: bool | None
    pred: str | None
    format_ok: bool
    reason: str

    @property
    def reward(self) -> float:
        """DianJin's gated reward: 1 iff the strict format holds and the answer is correct."""
        return 1.0 if (self.format_ok and self.correct is True) else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Task:
    """Base class of a benchmark task. Subclasses set `name`, `boxed` and override the hooks."""

    name: ClassVar[str] = ""
    # Whether the final answer is short and belongs in \boxed{} (required by the strict format).
    boxed: ClassVar[bool] = True

    # --- hooks ------------------------------------------------------------------------------
    def load(self, path: str) -> list[Example]:
        """Read the task's real file format into examples."""
        raise NotImplementedError

    def messages(self, example: Example) -> Messages:
        """The chat messages sent to the model for this example."""
        raise NotImplementedError

    def extract(self, text: str, example: Example) -> str | None:
        """Normalised prediction from a piece of answer text (a box's content, an answer block, or
        the text after the reasoning); None when nothing answer-like is found."""
        raise NotImplementedError

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        """Compare a normalised prediction with the example's gold: (correct, reason)."""
        raise NotImplementedError

    def reference(self, example: Example) -> str:
        """A short reference answer for rendering targets (defaults to the gold)."""
        return str(example["gold"])

    def chance(self, example: Example) -> float:
        """The accuracy of a uniform guess among the answers the question offers: 1/k for k options,
        0 for an open answer. Summaries give its mean as the floor a model reaches by guessing."""
        choices = example.get("choices")
        return 1 / len(choices) if isinstance(choices, dict) and choices else 0.0

    # --- judging: tasks checked by an LLM judge override these three -------------------------
    def judge_messages(self, pred: str, example: Example) -> Messages | None:
        """The messages asking the judge LLM whether `pred` (what `extract` found in one answer) answers
        `example`; None when the task needs no judge (the default)."""
        return None

    def parse_judge(self, reply: str | None) -> tuple[bool | None, str]:
        """The judge's verdict from its reply to `judge_messages`: (correct, reason), correct None when
        the reply gives no clear verdict."""
        raise NotImplementedError(f"task {self.name!r} has no judge")

    def judge_template(self) -> str | None:
        """The judge prompt as written (recorded with evaluation results); None without a judge."""
        return None

    def prompt(self, example: Example, system: str | None = None) -> Messages:
        """What SFT trains on and RL/eval send: `messages`, after an optional system message."""
        return ([{"role": "system", "content": system}] if system else []) + self.messages(example)

    # --- shared scoring ---------------------------------------------------------------------
    def score(
        self,
        response: str | None,
        example: Example,
        *,
        mode: Mode = "eval",
        reasoning_content: str | None = None,
        judge: Judge | None = None,
        judge_verdict: tuple[bool | None, str] | None = None,
    ) -> Verdict:
        """Score one response. Never raises on odd model output.

        A judged task is judged by `judge_verdict` (`parse_judge` of the judge's reply to
        `judge_messages(pred, example)`, asked by the caller: the data pipeline and the evaluation ask
        in bulk), else by `check`, which asks `judge` (a blocking callable) itself."""
        text = fmt.join_reasoning(response, reasoning_content)
        parsed = fmt.parse_strict(text, require_boxed=self.boxed)
        if mode == "reward" and parsed.ok:
            candidates = [parsed.boxed if self.boxed else parsed.answer]
        else:
            tail = fmt.strip_think(text)[-fmt.TAIL_CHARS :]
            if self.boxed:  # short answers: the last box wins (upstream eval.py)
                candidates = [fmt.last_boxed(text), fmt.answer_block(text), tail]
            else:  # open answers: the whole answer block, not a box quoted inside it
                candidates = [fmt.answer_block(text), fmt.last_boxed(text), tail]
        pred = None
        for cand in candidates:
            if cand:
                pred = self.extract(cand, example)
                if pred is not None:
                    break
        format_note = "" if parsed.ok else f" (format: {parsed.reason})"
        if pred is None:
            return Verdict(False, None, parsed.ok, "no answer found" + format_note)
        correct, why = judge_verdict if judge_verdict is not None else self.check(pred, example, judge)
        return Verdict(correct, pred, parsed.ok, why + format_note)
