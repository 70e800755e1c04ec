"""GPQA-Diamond task: CSV loader, deterministic option shuffles with k repeats, letter extraction.

The fixture tests/assets/gpqa_sample.csv holds invented rows in GPQA's CSV schema (never real GPQA
questions: its authors ask that examples not be posted in plain text).

    .venv/bin/python -m pytest -q tests/test_task_gpqa.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dianjin.answer import render
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks import gpqa as g

TASK = get_task("gpqa")
SAMPLE = str(Path(__file__).parent / "assets" / "gpqa_sample.csv")
# The fixture's questions in file order: (record id, stripped correct answer, stripped incorrect answers)
FIXTURE = [
    ("recInventedAAAA01", "sqrt(2h/g)", ["2h/g", "sqrt(h/g)", "h/(2g)"]),
    ("recInventedAAAA02", "4", ["3", "5", "6"]),
    ("recInventedAAAA03", "$10^{-8}$ eV", ["$10^{-4}$ eV", "$10^{-11}$ eV", "$10^{-9}$ eV"]),
    (
        "recInventedAAAA04",
        "In the cytosol, free",
        ["In the nucleus, bound to DNA", "In the lumen of the ER", "Still attached to the protein"],
    ),
]


@pytest.mark.parametrize(
    "name",
    [
        "gpqa",  # the task name
        "gpqa_diamond",  # EvalScope-style name
        "GPQA-Diamond",  # aliases are case-insensitive
    ],
)
def test_aliases(name):
    assert get_task(name) is TASK


# --- loader ---------------------------------------------------------------------------------
def test_load_fixture_strips_whitespace_and_keeps_multiline_fields():
    exs = TASK.load(SAMPLE)
    assert [e["id"] for e in exs] == [f"{rid}#0" for rid, _, _ in FIXTURE]
    for e, (rid, correct, incorrect) in zip(exs, FIXTURE):
        assert e["task"] == "gpqa" and e["record_id"] == rid and e["repeat"] == 0
        assert e["answers"] == [correct, *incorrect]  # file order, each stripped ("4\n" -> "4")
        assert sorted(e["choices"]) == list("ABCD") and sorted(e["choices"].values()) == sorted([correct, *incorrect])
        assert e["choices"][e["gold"]] == correct  # the gold letter points at the correct answer
    assert exs[1]["question"].count("\n") == 4 and '"reagent Y"' in exs[1]["question"]  # quoted multi-line field
    assert exs[2]["question"].startswith("An invented") and exs[2]["question"].endswith("closest?")  # outer spaces gone
    assert (exs[0]["domain"], exs[0]["subdomain"]) == ("Physics", "Classical Mechanics")


def test_prompt_lists_shuffled_choices():
    e = TASK.load(SAMPLE)[1]
    content = TASK.messages(e)[0]["content"]
    assert content.startswith("What is the correct answer to this question: An invented two-step synthesis:\n")
    for letter in "ABCD":
        assert f"\n({letter}) {e['choices'][letter]}\n" in content
    assert "<think></think>" in content and "<answer></answer>" in content and "\\boxed{}" in content


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> str:
    header = header or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return str(path)


ROW = {
    "Question": "Invented question,\nover two lines?",
    "Correct Answer": "right",
    "Incorrect Answer 1": "wrong 1",
    "Incorrect Answer 2": "wrong 2",
    "Incorrect Answer 3": "wrong 3",
    "Record ID": "recInventedBBBB01",
}


@pytest.mark.parametrize(
    "second, header_drop, line, field",
    [
        (
            dict(ROW, **{"Record ID": "recInventedBBBB02", "Incorrect Answer 2": " \n "}),
            None,
            4,
            "Incorrect Answer 2",
        ),  # blank after strip; line of the record's start (first record spans 2-3)
        (dict(ROW, Question=""), None, 4, "Question"),  # empty question
        (dict(ROW), None, 4, "Record ID"),  # duplicate Record ID
        (dict(ROW), "Incorrect Answer 3", 1, "Incorrect Answer 3"),  # a missing column is reported on the header line
    ],
)
def test_load_errors_name_line_and_field(tmp_path, second, header_drop, line, field):
    header = [c for c in ROW if c != header_drop]
    path = write_csv(tmp_path / "bad.csv", [ROW, second], header)
    with pytest.raises(DataError) as err:
        TASK.load(path)
    assert (err.value.line, err.value.field) == (line, field), str(err.value)


def test_load_handles_bom_and_extra_columns(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text(
        "\ufeff" + "Canary String," + ",".join(ROW) + "\n" + "x," + ",".join(f'"{v}"' for v in ROW.values()) + "\n",
        encoding="utf-8",
    )
    (e,) = TASK.load(str(path))
    assert e["question"] == ROW["Question"] and e["answers"][0] == "right"


# --- shuffles and repeats -------------------------------------------------------------------
def test_shuffle_is_deterministic():
    assert TASK.load(SAMPLE, k=3) == TASK.load(SAMPLE, k=3)  # same file, same examples
    assert g.permutation("recInventedAAAA01", 1) == g.permutation("recInventedAAAA01", 1)  # pure function
    first = TASK.load(SAMPLE, k=2)[:4]
    assert first == TASK.load(SAMPLE)  # repeat 0 does not depend on k


@pytest.mark.parametrize(
    "k",
    [
        4,  # simple-evals' number of repeats
        24,  # every permutation of four options exactly once
    ],
)
def test_k_repeats_give_distinct_permutations_and_gold_tracks_correct_answer(k):
    exs = TASK.load(SAMPLE, k=k)
    assert len(exs) == k * len(FIXTURE)
    assert [e["repeat"] for e in exs] == [r for r in range(k) for _ in FIXTURE]  # repeat-major order
    for rid, correct, _ in FIXTURE:
        reps = [e for e in exs if e["record_id"] == rid]
        assert [e["id"] for e in reps] == [f"{rid}#{r}" for r in range(k)]
        orders = {tuple(e["choices"][x] for x in "ABCD") for e in reps}
        assert len(orders) == k  # k different option orders
        assert all(e["choices"][e["gold"]] == correct for e in reps)  # the gold letter follows the correct answer
    if k == 24:  # over 24 repeats the correct answer sits under every letter equally often
        assert all(sum(e["gold"] == x for e in exs) == 6 * len(FIXTURE) for x in "ABCD")


def test_questions_get_different_orders():
    perms = {g.permutation(rid, 0) for rid, _, _ in FIXTURE}
    assert len(perms) > 1  # the seed is per question, not one global order


def test_expand_from_loaded_examples():
    once = TASK.load(SAMPLE)
    assert g.expand(once, 3) == TASK.load(SAMPLE, k=3)  # expand == load(k)
    assert g.expand(g.expand(once, 2), 3) == TASK.load(SAMPLE, k=3)  # repeats are deduplicated by record_id


@pytest.mark.parametrize("k", [0, -1, 1.5, "4"])  # not a positive integer
def test_bad_k(k):
    with pytest.raises(ValueError):
        TASK.load(SAMPLE, k=k)


# --- extraction -----------------------------------------------------------------------------
# Choices of the fixture's third question, repeat 0, as a fixed example (D holds the correct answer).
EXAMPLE = {
    "gold": "D",
    "choices": {"A": "$10^{-9}$ eV", "B": "$10^{-4}$ eV", "C": "$10^{-11}$ eV", "D": "$10^{-8}$ eV"},
}


@pytest.mark.parametrize(
    "text, want",
    [
        ("\\boxed{C}", "C"),  # plain box
        ("so \\boxed{\\text{C}}.", "C"),  # \text inside the box
        ("\\boxed{(C)}", "C"),  # parentheses inside the box
        ("\\boxed{\\textbf{(B)}}", "B"),  # bold and parentheses
        ("\\boxed{c}", "C"),  # lowercase counts inside a box
        ("\\boxed{Ｃ}", "C"),  # full-width letter
        ("\\boxed{D) $10^{-8}$ eV}", "D"),  # letter then the option text
        ("\\boxed{10^{-8} eV}", "D"),  # the text of exactly one option
        ("\\boxed{$10^{-11}$ eV.}", "C"),  # ... with maths dollars and a full stop
        ("\\boxed{5 eV}", None),  # a box naming no option gives nothing
        ("C", "C"),  # a bare answer block
        ("**(b)**", "B"),  # a bare letter with markdown
        ("Answer: C", "C"),  # simple-evals' answer line
        ("Answer: $C$", "C"),  # ... with maths dollars
        ("**Final Answer:** B", "B"),  # markdown around the phrase
        ("The answer is C.", "C"),  # answer phrase
        ("The correct answer is (C).", "C"),  # idavidrein/gpqa's baseline format
        ("The correct answer is B because the splitting is tiny.", "B"),  # letter followed by a reason
        (
            "The answer is" + " " * 2_000 + "C" + " " * 2_000 + "- tiny.",
            "C",
        ),  # long runs of spaces (matched possessively)
        ("The correct option is D", "D"),  # "option" as the answer word
        ("答案是 B", "B"),  # Chinese answer phrase
        ("Options (A) and (B) fail, so it is (D)", "D"),  # last standalone (X)
        ("Option (A) fits. The answer is C.", "C"),  # an answer phrase beats a mentioned option
        ("Answer: A good approach is to estimate the energy first.", None),  # trap: "A" is the article
        ("I think the energy is small.", None),  # trap: "I" is a pronoun, never an option
        ("A careful estimate gives about a hundred millionth of an eV.", None),  # trap: sentence starting with "A"
        ("the answer is c", None),  # lowercase in free text never counts
        ("I am not sure, maybe (e)", None),  # not an option letter
        ("", None),  # nothing
    ],
)
def test_extract(text, want):
    assert TASK.extract(text, EXAMPLE) == want


def test_extract_without_choices():
    # a minimal `dianjin score` example has only the gold: letters still work, option text cannot
    assert TASK.extract("\\boxed{B}", {"gold": "B"}) == "B"
    assert TASK.extract("\\boxed{10^{-8} eV}", {"gold": "D"}) is None


@pytest.mark.parametrize(
    "gold, pred, want",
    [
        ("D", "D", True),  # same letter
        ("D", "C", False),  # another letter
        ("d", "D", True),  # gold case does not matter
        ("E", "E", None),  # a gold that is no option letter cannot be verified
        ("", "A", None),  # missing gold
    ],
)
def test_check(gold, pred, want):
    assert TASK.check(pred, {"gold": gold})[0] is want


@pytest.mark.parametrize(
    "response, mode, correct, format_ok",
    [
        (render("tiny splitting", "", boxed="D"), "reward", True, True),  # target format
        (render("tiny splitting", "", boxed="A"), "reward", False, True),  # wrong letter
        (render("tiny", "The answer is D."), "reward", True, False),  # no box: format fails, answer still read
        ("<think>A or D?</think>\nAnswer: D", "eval", True, False),  # eval reads the text after the reasoning
        ("<think>\\boxed{D}</think>\n<answer>\\boxed{B}</answer>", "eval", False, True),  # the last box wins
    ],
)
def test_score(response, mode, correct, format_ok):
    v = TASK.score(response, EXAMPLE, mode=mode)
    assert (v.correct, v.format_ok) == (correct, format_ok), v


LONG = "A " * 500_000
