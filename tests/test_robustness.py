"""Every task scores pathological responses quickly and never raises (issue: robustness)."""

import pytest
from timing import cpu_seconds

from dianjin.tasks import TASKS

# One minimal example per task, as a `dianjin score` line would give it.
EXAMPLES = {
    "cflue": {"gold": "AC", "choices": {"A": "债券", "B": "股票", "C": "基金", "D": "期货"}},
    "cflue_oe": {"gold": "提高存款准备金率", "question": "央行如何收紧流动性？"},
    "finqa": {"gold": 0.2},
    "math500": {"gold": "\\frac{1}{2}"},
    "gpqa": {"gold": "C", "choices": dict(zip("ABCD", ("w", "x", "y", "z")))},
    "ccc": {"gold": "violation"},
    "fincalc": {"gold": "12.34", "unit": "%", "form": "open"},
}

RESPONSES = {
    "1MB of text": "x" * 1_000_000 + "\\boxed{A}",
    "1MB of digits": "1 " * 500_000,
    "10k unmatched braces": "\\boxed{" + "{" * 10_000,
    "10k unclosed boxes": "\\boxed{" * 10_000,
    "10k think tags": "<think>" * 10_000 + "<answer>\\boxed{A}</answer>",
    "deep parentheses": "<think>x</think><answer>\\boxed{" + "(" * 5_000 + "1" + ")" * 5_000 + "}</answer>",
    "deep fractions": "\\boxed{" + "\\frac{1}{" * 2_000 + "2" + "}" * 2_000 + "}",
    "10k answer tags": "<answer>" * 10_000 + "违规 是否违规 no violation",
    "empty": "",
}


def test_every_task_is_covered():
    assert set(EXAMPLES) == set(TASKS)


@pytest.mark.parametrize("task", sorted(EXAMPLES))
@pytest.mark.parametrize("kind", sorted(RESPONSES))
def test_pathological_response_is_fast_and_safe(task, kind):
    scorer, example, response = TASKS[task], EXAMPLES[task], RESPONSES[kind]
    for mode in ("eval", "reward"):
        verdict = scorer.score(response, example, mode=mode)  # never raises
        assert verdict.correct in (True, False, None)
        assert cpu_seconds(lambda: scorer.score(response, example, mode=mode)) < 0.05, (task, kind, mode)
