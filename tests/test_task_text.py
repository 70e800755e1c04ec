"""dianjin.tasks.text: the one LaTeX unwrap and the one option-letter reader every task uses.

The tables call `option_letters` with each task's settings (CFLUE: a set among A-G; GPQA: one of A-D
with the last-"(C)" fallback; FinCalc MCQ: one of A-D, or an option's number), then check that the
tasks themselves read the same texts the same way, including the cases where the three extractors
these replaced used to disagree.
"""

from __future__ import annotations

import time

import pytest

from dianjin.tasks import get_task
from dianjin.tasks.numeric import parse_number
from dianjin.tasks.text import option_letters, plain, unwrap_latex

FOUR = {"A": "债券", "B": "股票", "C": "基金", "D": "期货"}
TF = {"A": "对", "B": "错"}
EV = {"A": "$10^{-9}$ eV", "B": "$10^{-4}$ eV", "C": "$10^{-11}$ eV", "D": "$10^{-8}$ eV"}
PCT = {"A": "10.00%", "B": "12.34%", "C": "15.00%", "D": "20.00%"}

# Each task's settings.
CFLUE = {"letters": "ABCDEFG", "choices": FOUR, "multi": True}
CFLUE_TF = {"letters": "ABCDEFG", "choices": TF, "multi": True}
CFLUE_BARE = {"letters": "ABCDEFG", "multi": True}  # a `dianjin score` line without choices
GPQA = {"letters": "ABCD", "choices": EV, "parens": True}
FINCALC = {"letters": "ABCD", "choices": PCT, "value": parse_number}
SINGLE = {"letters": "ABCD"}  # one letter, no choices known


# --- unwrap_latex and plain ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("\\text{B}", " B "),  # the content, spaced
        ("\\text {yes}", " yes "),  # a space before the brace
        ("\\textbf{\\text{12}}\\%", "  12  \\%"),  # two levels of nesting
        ("\\text{\\textbf{\\textit{B}}}", "\\text{  B  }"),  # a third level stays (two passes, linear)
        ("10^{-8}\\mathrm{eV}", "10^{-8} eV "),  # spaced, so the unit is a word of its own
        ("\\operatorname{ROE} = 12\\%", " ROE  = 12\\%"),  # numbers.py's alternative
        ("\\textrm{A}\\mathbf{C}", " A  C "),  # gpqa.py's alternatives
        ("\\boldsymbol{C}", " C "),  # added: bold maths
        ("\\mbox{A}", " A "),  # added: a box of text
        ("\\textsuperscript{2}", "\\textsuperscript{2}"),  # not a text wrapper
        ("\\frac{1}{2}", "\\frac{1}{2}"),  # maths is left to the number reader
        ("no latex", "no latex"),  # nothing to do
    ],
)
def test_unwrap_latex(text, expected):
    assert unwrap_latex(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Ａ、Ｃ", "A、C"),  # NFKC: full-width letters
        ("**\\text{B}**", "B"),  # markdown and a wrapper
        ("\\boxed{C}", "C"),  # other commands and braces dropped
        ("\\checkmark", "√"),  # a tick as a symbol (a 对 synonym)
        ("\\times", "×"),  # a cross as a symbol (a 错 synonym)
        ("  ", ""),  # stripped
    ],
)
def test_plain(text, expected):
    assert plain(text) == expected


# --- option_letters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, settings, expected",
    [
        # rule 1: a bare answer of letters, separators and answer words
        ("A", SINGLE, "A"),  # plain letter
        ("DBA", CFLUE, "ABD"),  # a set, sorted
        ("DBA", SINGLE, None),  # a set is no answer to a one-letter question
        ("Both A and C", CFLUE, "AC"),  # "Both" is no letter
        ("A and C are correct", CFLUE, "AC"),  # approval suffix
        ("选项A和C都正确", CFLUE, "AC"),  # Chinese prefix and suffix
        ("\\mathrm{A},\\mathrm{C}", CFLUE, "AC"),  # wrappers around each letter
        ("Ａ、Ｃ", CFLUE, "AC"),  # full-width
        ("The correct answer is (C).", SINGLE, "C"),  # answer words, brackets, full stop
        ("b", SINGLE, "B"),  # a lone lowercase letter
        ("**(b)**", SINGLE, "B"),  # ... with markdown and brackets
        ("the answer is c", SINGLE, None),  # lowercase after answer words does not count
        ("E", CFLUE, None),  # a letter that is not an option, and nothing else is tried
        ("E", CFLUE_BARE, "E"),  # without choices any of the task's letters counts
        ("CAFE", CFLUE, None),  # letters, not all options
        ("A、E", CFLUE, None),  # one letter names a missing option
        ("C", {"letters": "ABCD", "choices": {"A": "x"}}, None),  # only the choices' letters count
        # rule 2: an option's text
        ("股票", CFLUE, "B"),  # exact wording
        ("答案：基金", CFLUE, "C"),  # ... after an answer phrase (rule 3)
        ("10^{-8} eV", GPQA, "D"),  # maths markup ignored on both sides
        ("$10^{-11}$ eV.", GPQA, "C"),  # ... and a full stop
        ("正确。", CFLUE_TF, "A"),  # a 对 synonym for a 对/错 pair
        ("F", CFLUE_TF, "B"),  # F is no option here, so it means False
        ("\\times", CFLUE_TF, "B"),  # a LaTeX cross
        ("对", CFLUE, None),  # 对 is no option of an ordinary question
        # rule 3: answer phrases
        ("答案：A。解析：B选项错误", CFLUE, "A"),  # the analysis after the answer is not read
        ("答案可能是B，但再想想，最终答案是C", SINGLE, "C"),  # the last phrase wins
        ("final " * 300 + "correct answer would be B", SINGLE, "B"),  # qualifiers: matched from "answer"
        ("The correct answer is B because the splitting is tiny.", SINGLE, "B"),  # a reason follows
        ("The answer is" + " " * 2_000 + "C" + " " * 2_000 + "- tiny.", SINGLE, "C"),  # long runs of spaces
        ("Answer: A good approach is to estimate the energy first.", SINGLE, None),  # the article A
        ("The correct options are A, C, and D.", CFLUE, "ACD"),  # a list with a serial comma
        ("The answer is A and C.", SINGLE, None),  # two letters for a one-letter question
        ("答案是A或C", CFLUE, None),  # a hedge is no answer
        ("Answer: A-type stars", SINGLE, None),  # a letter glued to a word
        ("The growth rate is 12.34%, which is option B.", SINGLE, "B"),  # "is option B"
        ("增长率为 12.34%，对应选项 B。", SINGLE, "B"),  # "对应选项 B"
        ("答案：99.01。", {"letters": "ABCD", "choices": {"A": "99.01", "B": "100.00"}}, "A"),  # a number's dot
        # rule 4: an option label opening a bare answer
        ("A. 债券；C. 基金", CFLUE, "AC"),  # two labels
        ("A. U.S. bonds", CFLUE, "A"),  # U and S are not among the task's letters: not labels
        ("D) $10^{-8}$ eV", GPQA, "D"),  # a label with a bracket
        ("A. First we note that... The answer is C.", SINGLE, "C"),  # an answer phrase beats a label
        # rule 5: choosing verbs
        ("所以，我认为不选B，故选D。", SINGLE, "D"),  # the negated choice is skipped
        ("B不正确，不应选B。", SINGLE, None),  # only negated choices
        ("I would not choose B; D is better.", SINGLE, None),  # English negation
        ("I pick option B", SINGLE, "B"),  # English verb and "option"
        # rule 6: an option's number (FinCalc)
        ("12.34", FINCALC, "B"),  # the value without its percent sign
        ("答案为12.34", FINCALC, "B"),  # ... after an answer phrase
        ("99%", FINCALC, None),  # no option has it
        ("12.34", SINGLE, None),  # without a number reader a number names nothing
        ("Option B gives 12.34%, option C gives 15%.", FINCALC, None),  # a sentence is no bare number
        # rule 7: the last "(C)" (GPQA)
        ("Options (A) and (B) fail, so it is (D)", GPQA, "D"),  # the last standalone (X)
        ("Options (A) and (B) fail, so it is (D)", CFLUE, None),  # CFLUE never scans free text for letters
        ("I am not sure, maybe (e)", GPQA, None),  # lowercase in free text
        # the last box first
        ("so \\boxed{\\text{C}}.", SINGLE, "C"),  # a box inside the text
        ("答案：\\boxed{E} 答案是A和C。", CFLUE, "AC"),  # a box naming no option: the text is read
        ("\\boxed{5 eV}", GPQA, None),  # a box naming nothing
        ("", SINGLE, None),  # empty
    ],
)
def test_option_letters(text, settings, expected):
    assert option_letters(text, **settings) == expected


# --- the tasks read alike ----------------------------------------------------------------------------
EXAMPLES = {
    "cflue": {"gold": "A", "choices": FOUR},
    "gpqa": {"gold": "A", "choices": EV},
    "fincalc": {"gold": "A", "form": "mcq", "choices": PCT},
}


@pytest.mark.parametrize(
    "text, cflue, gpqa, fincalc",
    [
        # cases where the three old extractors disagreed; (old cflue, gpqa, fincalc) in the comment
        ("选B", "B", "B", "B"),  # choosing verb as a bare answer (B, None, B)
        ("B选项", "B", "B", "B"),  # letter then "option" (B, None, None)
        ("答案：A。解析：B选项错误", "A", "A", "A"),  # answer then analysis (A, None, A)
        ("本题应选C。", "C", "C", "C"),  # "should choose C" (C, None, C)
        ("After checking each option, I choose D.", "D", "D", "D"),  # English choosing verb (D, None, None)
        ("A. Bond", "A", "A", "A"),  # a label with text containing a letter (A, A, None)
        ("b", "B", "B", "B"),  # a lone lowercase letter (B, B, None)
        ("so \\boxed{\\text{C}}.", "C", "C", "C"),  # the box inside the text (None, C, None)
        ("\\boxed{\\boldsymbol{B}}", "B", "B", "B"),  # a wrapper only some knew (B, None, None)
        ("The answer is \\textbf{\\text{B}}.", "B", "B", "B"),  # nested wrappers (B, None, None)
        ("答案是B因为债券", "B", "B", "B"),  # a letter before Chinese text (B, None, B)
        ("The growth rate is 12.34%, which is option B.", "B", "B", "B"),  # "is option B" (None, None, B)
        ("The answer is C for sure", "C", "C", "C"),  # a letter before "for" (C, None, C)
        ("Answer: A good approach is to estimate the energy first.", None, None, None),  # article (A, None, A)
        ("Answer: A-type stars", None, None, None),  # a letter glued to a word (A, None, A)
        ("答案是A或C", None, None, None),  # a hedge (A, None, A)
        ("the answer is c", None, None, None),  # lowercase after answer words (C, None, None)
        ("the answer is (b)", None, None, None),  # ... in brackets (B, None, None)
        (
            "A. 债券；C. 基金",
            "AC",
            None,
            None,
        ),  # two labels: a set, or no answer to a one-letter question (AC, A, None)
        ("(A)(C)", "AC", None, None),  # two bracketed letters (AC, C, None)
        ("The answer is A and C.", "AC", None, None),  # two letters after a phrase (AC, None, A)
        ("A、E", None, None, None),  # a letter naming a missing option (None, None, A)
        ("B不正确，不应选B。", None, None, None),  # only negated choices (None, None, B)
        ("A. First we note that... The answer is C.", "C", "C", "C"),  # phrase before label (C, A, C)
        ("Options (A) and (B) fail, so it is (D)", None, "D", None),  # only GPQA scans for "(X)" (ABD, D, None)
        ("Option B gives 12.34%, option C gives 15%.", None, None, None),  # "option C" needs a verb (None, None, C)
    ],
)
def test_tasks_read_alike(text, cflue, gpqa, fincalc):
    got = tuple(get_task(name).extract(text, ex) for name, ex in EXAMPLES.items())
    assert got == (cflue, gpqa, fincalc)


# --- linear time -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "答案是" + "A和" * 15_000,  # one answer phrase, a set that never ends
        "The answer is " + "A " * 15_000 + "good",  # a run of letters that does not stand alone
        "The answer is " + "A, " * 10_000 + "x",  # ... with commas
        "答案是" * 10_000,  # phrases with nothing after them
        "is option " * 5_000,  # the "is option X" phrase, repeated
        "(A) " * 8_000,  # bracketed letters (the GPQA fallback)
        "A. " * 10_000,  # labels
        "\\text{" * 10_000 + "B" + "}" * 10_000,  # deeply nested wrappers
        "\\boxed{" + "A、" * 10_000 + "}",  # a huge box of letters
    ],
)
@pytest.mark.parametrize("settings", [CFLUE, GPQA, FINCALC], ids=["cflue", "gpqa", "fincalc"])
def test_linear(text, settings):
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        option_letters(text, **settings)
        best = min(best, time.process_time() - t)
    assert best < 0.05, f"{best * 1000:.1f} ms"
