"""The answer format: rendering, strict parsing (reward gate) and lenient extraction (eval)."""

import pytest
from timing import cpu_seconds

from dianjin.answer import answer_block, join_reasoning, last_boxed, lenient_answer, parse_strict, render

OK = "<think>r</think><answer>\\boxed{A}</answer>"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\\boxed{A}", "A"),  # plain box
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces are matched, not cut at the first }
        ("\\boxed{1} then \\boxed{2}", "2"),  # the last box wins
        ("\\boxed {42}", "42"),  # space between command and brace
        ("\\fbox{7}", "7"),  # \fbox is a box too
        ("\\boxed{\\text{B}}", "\\text{B}"),  # inner command kept for the task to normalise
        ("\\boxed{3} and \\boxed{unclosed", "3"),  # an unbalanced last box falls back to the previous one
        ("no box here", None),  # nothing
        ("\\boxed{", None),  # unbalanced only
        ("\\boxed{a{b}c}", "a{b}c"),  # inner group
        ("答案是 \\boxed{ＡＣ}", "ＡＣ"),  # full-width content untouched here (tasks normalise)
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    "text, require_boxed, ok, reason_part",
    [
        (OK, True, True, "ok"),  # canonical
        (
            "<think>r</think>\n<answer>The answer is \\boxed{12.5}</answer>",
            True,
            True,
            "ok",
        ),  # text around the box is fine
        ("<think>r</think><answer>B</answer>", True, False, "no \\boxed"),  # boxed task without box
        ("<think>r</think><answer>B</answer>", False, True, "ok"),  # open-ended task needs no box
        ("<answer>\\boxed{A}</answer>", True, False, "think"),  # no think block (upstream: 0)
        ("<think>a</think><think>b</think><answer>\\boxed{A}</answer>", True, False, "think"),  # two think blocks
        (
            "<think>r</think><answer>\\boxed{A}</answer><answer>\\boxed{B}</answer>",
            True,
            False,
            "answer",
        ),  # two answers
        (
            "<answer>\\boxed{A}</answer><think>r</think>",
            True,
            False,
            "order",
        ),  # answer before think (upstream misses this)
        ("<think>r<answer>\\boxed{A}</answer></think>", True, False, "order"),  # answer nested in think
        ("<think>r</think><answer>x</answer> \\boxed{A}", True, False, "no \\boxed"),  # box outside the answer block
        ("<think>r</think>", True, False, "answer"),  # truncated before the answer
        ("", True, False, "think"),  # empty
    ],
)
def test_parse_strict(text, require_boxed, ok, reason_part):
    p = parse_strict(text, require_boxed=require_boxed)
    assert p.ok is ok
    assert reason_part in p.reason


def test_render_round_trip():
    text = render("先算增长率。\n(120-100)/100 = 20%", "增长率为20%。", boxed="20")
    p = parse_strict(text)
    assert p.ok and p.boxed == "20" and p.reasoning.startswith("先算") and "增长率为20%" in p.answer


@pytest.mark.parametrize(
    "content, reasoning, expected",
    [
        ("<answer>\\boxed{A}</answer>", "why", "<think>why</think><answer>\\boxed{A}</answer>"),  # split by the server
        (OK, "ignored", OK),  # content already holds the think block
        ("<answer>x</answer>", None, "<answer>x</answer>"),  # no reasoning field
        ("why</think><answer>x</answer>", "why", "<think>why</think><answer>x</answer>"),  # prefilled <think>
        (None, "why", "<think>why</think>"),  # empty content
    ],
)
def test_join_reasoning(content, reasoning, expected):
    assert join_reasoning(content, reasoning) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x \\boxed{C} <answer>A</answer>", ("C", "boxed")),  # a box wins over the answer block
        ("<answer> 12.5% </answer>", ("12.5%", "answer")),  # else the answer block
        ("<answer>unclosed answer", ("unclosed answer", "answer")),  # truncated after <answer>
        ("答案：B", (None, "none")),  # left to the task's fallbacks
    ],
)
def test_lenient_answer(text, expected):
    assert lenient_answer(text) == expected


def test_answer_block_takes_last():
    assert answer_block("<answer>1</answer> text <answer>2</answer>") == "2"


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000 + "\\boxed{1}",  # 1 MB response
        "\\boxed{" + "{" * 10_000,  # ten thousand unmatched braces
        "\\boxed{" * 10_000,  # ten thousand unclosed boxes
        "<think>" * 10_000 + "<answer>\\boxed{A}</answer>",  # ten thousand think tags
        "<answer>" + "(" * 50_000 + ")" * 50_000 + "</answer>",  # deep nesting
        "}" * 100_000 + "\\boxed{" + "{}" * 100_000,  # brace soup
    ],
)
def test_pathological_inputs_are_fast(text):
    assert cpu_seconds(lambda: (last_boxed(text), parse_strict(text), lenient_answer(text))) < 0.05
