"""The DianJin-R1 answer format: `<think>reasoning</think><answer>final answer</answer>`.

One module renders and parses it, in two modes:

- strict (the RL reward's gate, upstream `reward_score_cflue.py` plus the order check it lacks):
  exactly one think block, exactly one answer block, think before answer, and for boxed tasks a
  `\\boxed{}` inside the answer block;
- lenient (evaluation, upstream `eval.py`): the last balanced `\\boxed{}` anywhere, else the
  `<answer>` block; task modules add their own fallbacks ("答案：B", "Answer: B", ...).

Servers such as vLLM with a reasoning parser or `transformers serve` move the thinking into a
separate `reasoning_content` field; `join_reasoning` puts it back in front of the content.

Every function here is linear in the response length and bounded: a 1 MB response or ten thousand
unmatched braces cannot make it slow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

# Final answers live near the end; extraction looks at most this many trailing characters.
TAIL_CHARS = 32_768

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE = re.compile(r"[{}]")


def render(reasoning: str, answer: str, boxed: str | None = None) -> str:
    """Render a response in the target format; `boxed` is appended to the answer as `\\boxed{..}`."""
    body = answer.strip()
    if boxed is not None:
        box = f"\\boxed{{{boxed}}}"
        body = f"{body}\n{box}" if body else box
    return f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n{ANSWER_OPEN}\n{body}\n{ANSWER_CLOSE}"


def join_reasoning(content: str | None, reasoning_content: str | None = None) -> str:
    """Rebuild the full response when a server split the thinking into `reasoning_content`."""
    content = content or ""
    if not reasoning_content or THINK_OPEN in content:
        return content
    body = content
    if THINK_CLOSE in body:  # template prefilled `<think>`: the content starts inside the block
        body = body.split(THINK_CLOSE, 1)[1]
    return f"{THINK_OPEN}{reasoning_content}{THINK_CLOSE}{body}"


def last_boxed(text: str) -> str | None:
    """Content of the last balanced `\\boxed{...}` (or `\\fbox{...}`); None when there is none.

    Braces are matched, so `\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`. An unbalanced last box is
    skipped in favour of the previous balanced one.
    """
    if len(text) > TAIL_CHARS:
        text = text[-TAIL_CHARS:]
    starts = [m.end() - 1 for m in _BOXED.finditer(text)]  # positions of each box's "{"
    if not starts:
        return None
    # One pass over the braces after the first box: match each "{" with its "}" (a stack).
    close_of: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE.finditer(text, starts[0]):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            close_of[stack.pop()] = m.start()
    for start in reversed(starts):
        end = close_of.get(start)
        if end is not None:
            return text[start + 1 : end].strip()
    return None


def answer_block(text: str) -> str | None:
    """Content of the last `<answer>...</answer>` block, or of an unclosed trailing `<answer>`."""
    end = text.rfind(ANSWER_CLOSE)
    if end >= 0:
        start = text.rfind(ANSWER_OPEN, 0, end)
        if start >= 0:
            return text[start + len(ANSWER_OPEN) : end].strip()
    start = text.rfind(ANSWER_OPEN)
    if start >= 0 and end < start:
        return text[start + len(ANSWER_OPEN) :].strip()
    return None


def strip_think(text: str) -> str:
    """The part of a response after its reasoning (everything after the last `</think>`)."""
    i = text.rfind(THINK_CLOSE)
    return text[i + len(THINK_CLOSE) :] if i >= 0 else text


@dataclass(frozen=True)
class Parsed:
    """A strictly parsed response. `ok` is the format gate; `reason` says why it failed."""

    ok: bool
    reasoning: str | None
    answer: str | None
    boxed: str | None
    reason: str


def parse_strict(text: str, require_boxed: bool = True) -> Parsed:
    """Strict format check: one think block, then one answer block, a box inside it when required."""
    n_think_open, n_think_close = text.count(THINK_OPEN), text.count(THINK_CLOSE)
    n_ans_open, n_ans_close = text.count(ANSWER_OPEN), text.count(ANSWER_CLOSE)
    if n_think_open != 1 or n_think_close != 1:
        return Parsed(
            False,
            None,
            None,
            None,
            f"expected one think block, found {n_think_open} <think> and {n_think_close} </think>",
        )
    if n_ans_open != 1 or n_ans_close != 1:
        return Parsed(
            False,
            None,
            None,
            None,
            f"expected one answer block, found {n_ans_open} <answer> and {n_ans_close} </answer>",
        )
    t0, t1 = text.index(THINK_OPEN), text.index(THINK_CLOSE)
    a0, a1 = text.index(ANSWER_OPEN), text.index(ANSWER_CLOSE)
    if not (t0 < t1 <= a0 < a1):
        return Parsed(False, None, None, None, "tags out of order: need <think>...</think> then <answer>...</answer>")
    reasoning = text[t0 + len(THINK_OPEN) : t1].strip()
    answer = text[a0 + len(ANSWER_OPEN) : a1].strip()
    boxed = last_boxed(answer)
    if require_boxed and boxed is None:
        return Parsed(False, reasoning, answer, None, "no \\boxed{} inside <answer>")
    return Parsed(True, reasoning, answer, boxed, "ok")


def lenient_answer(text: str) -> tuple[str | None, str]:
    """The evaluation-mode final answer and where it came from: `boxed`, `answer` or `none`."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    block = answer_block(text)
    if block is not None:
        return block, "answer"
    return None, "none"
