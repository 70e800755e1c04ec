"""`Task.chance`: the accuracy of a uniform guess among a question's options, the floor the summaries
set beside accuracy (a model that learns the format but not the subject reaches it by guessing)."""

from __future__ import annotations

import pytest

from dianjin.tasks import get_task

FIVE = {"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"}

CASES = [
    # CFLUE single choice: one letter among four
    ("cflue", {"qtype": "单项选择题", "choices": {"A": "a", "B": "b", "C": "c", "D": "d"}}, 1 / 4),
    # CFLUE multiple choice: any non-empty subset of five letters
    ("cflue", {"qtype": "多项选择题", "choices": FIVE}, 1 / 31),
    # CFLUE true/false: A (对) or B (错)
    ("cflue", {"qtype": "判断题", "choices": {"A": "对", "B": "错"}}, 1 / 2),
    # CFLUE choices as the Python dict literal string of the raw file
    ("cflue", {"qtype": "单项选择题", "choices": "{'A': 'a', 'B': 'b', 'C': 'c'}"}, 1 / 3),
    # CFLUE with unreadable choices: nothing to guess among
    ("cflue", {"qtype": "单项选择题", "choices": "not a dict"}, 0.0),
    # FinCalc multiple choice and open number
    ("fincalc", {"form": "mcq", "choices": FIVE}, 1 / 5),
    ("fincalc", {"form": "open"}, 0.0),
    # GPQA: four shuffled options
    ("gpqa", {"choices": {"A": "1", "B": "2", "C": "3", "D": "4"}}, 1 / 4),
    # FinQA: a yes/no question is two answers; a number (given as a float or as text) is open
    ("finqa", {"gold": "Yes"}, 1 / 2),
    ("finqa", {"gold": 94.0}, 0.0),
    ("finqa", {"gold": "0.036"}, 0.0),
    # open answers: MATH expressions, CFLUE open-ended text
    ("math500", {"question": "q"}, 0.0),
    ("cflue_oe", {"question": "q"}, 0.0),
    # CCC: violation or compliant
    ("ccc", {"question": "q"}, 1 / 2),
]


@pytest.mark.parametrize("task,example,expected", CASES)
def test_chance_is_one_over_the_answers_a_question_offers(task: str, example: dict, expected: float):
    assert get_task(task).chance(example) == pytest.approx(expected)
