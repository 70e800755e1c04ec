"""MATH-500 task: loader, prompt, extraction, math-verify checking, guard and thread safety.

.venv/bin/python -m pytest -q tests/test_task_math500.py
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from timing import cpu_seconds

from dianjin.answer import render
from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks import math500 as m

TASK = get_task("math500")


def ex(gold: str) -> dict:
    """A minimal example, as built from a `dianjin score` input line."""
    return {"gold": gold}


# --- registry and prompt --------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "math500",  # the task name
        "math",  # short alias
        "MATH-500",  # aliases are case-insensitive
        "HuggingFaceH4/MATH-500",  # HF dataset id, as a verl data_source
        "AI-ModelScope/MATH-500",  # EvalScope's dataset id
    ],
)
def test_aliases(name):
    assert get_task(name) is TASK


def test_prompt_is_evalscope_sentence_in_our_format():
    msgs = TASK.messages({"question": "What is $1+1$?"})
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    content = msgs[0]["content"]
    assert content.startswith("What is $1+1$?\nPlease reason step by step")  # EvalScope's opening kept
    assert "<think></think>" in content and "<answer></answer>" in content and "\\boxed{}" in content


# --- loader ---------------------------------------------------------------------------------
RECORD = {
    "problem": "Compute $2+3$.",
    "solution": "Add them: $2+3=\\boxed{5}$.",
    "answer": "5",
    "subject": "Prealgebra",
    "level": 1,
    "unique_id": "test/prealgebra/1.json",
}


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_load_prm800k_schema(tmp_path):
    second = dict(RECORD, problem="Find $x$ if $2x=1$.", answer="\\frac{1}{2}", unique_id="test/algebra/2.json")
    path = write_jsonl(tmp_path / "test.jsonl", [RECORD, "", second])  # a blank line is skipped
    exs = TASK.load(path)
    assert [e["id"] for e in exs] == ["test/prealgebra/1.json", "test/algebra/2.json"]
    assert exs[0] == {
        "id": "test/prealgebra/1.json",
        "task": "math500",
        "question": "Compute $2+3$.",
        "gold": "5",
        **RECORD,
    }
    assert TASK.reference(exs[1]) == "\\frac{1}{2}"


@pytest.mark.parametrize(
    "bad, line, field",
    [
        ("{not json", 2, None),  # broken JSON names the line
        ("[1, 2]", 2, None),  # a line that is not an object
        (json.dumps({k: v for k, v in RECORD.items() if k != "answer"}), 2, "answer"),  # missing gold
        (json.dumps(dict(RECORD, problem="  ")), 2, "problem"),  # blank problem
        (json.dumps(dict(RECORD, unique_id=7)), 2, "unique_id"),  # id of the wrong type
        (json.dumps(RECORD), 2, "unique_id"),  # the same unique_id twice
    ],
)
def test_load_errors_name_line_and_field(tmp_path, bad, line, field):
    path = write_jsonl(tmp_path / "bad.jsonl", [RECORD, bad])
    with pytest.raises(DataError) as err:
        TASK.load(path)
    assert err.value.line == line and err.value.field == field and err.value.path == path


# --- extraction -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, want",
    [
        ("\\frac{1}{2}", "\\frac{1}{2}"),  # a box's content comes back as is
        ("We get \\boxed{x = 3}.", "x = 3"),  # a box inside a longer text wins
        ("The answer is $\\frac{3}{4}$, as shown.", "\\frac{3}{4}"),  # answer phrase: its first maths span
        ("Final Answer: 12.", "12"),  # answer phrase, trailing full stop dropped
        ("Thus the final answer is: **7**", "7"),  # markdown bold around the answer
        ("答案是 $42$", "42"),  # Chinese answer phrase
        ("最终答案：\\frac{1}{3}", "\\frac{1}{3}"),  # Chinese phrase with a full-width colon
        ("Adding gives $3$ and then $y = 9$ so we stop", "y = 9"),  # no phrase: the last inline maths
        ("so \\(x^2\\) is \\(16\\)", "16"),  # \( \) delimiters
        ("It costs \\$5 and \\$6", "It costs \\$5 and \\$6"),  # escaped dollars are not maths spans
        ("30", "30"),  # a bare answer block's content
        ("  $2\\sqrt{5}$  ", "2\\sqrt{5}"),  # surrounding $ stripped from a bare answer
        ("", None),  # nothing at all
        ("The area is large. " * 200, None),  # long prose with no answer: nothing
    ],
)
def test_extract(text, want):
    assert TASK.extract(text, ex("1")) == want


# --- checking: what math-verify 0.9.0 treats as equal (gold first) ----------------------------
@pytest.mark.parametrize(
    "gold, pred, want",
    [
        ("\\frac{1}{2}", "0.5", True),  # fraction vs decimal
        ("\\frac{1}{2}", "\\dfrac12", True),  # \dfrac and brace-less arguments
        ("\\frac{1}{2}", "1/2", True),  # plain slash
        ("\\frac{1}{2}", "0.51", False),  # close is not equal
        ("0.1", "10\\%", True),  # a percentage is its fraction
        ("10\\%", "0.1", True),  # ... in both directions
        ("10", "10\\%", True),  # math-verify also accepts the bare number for a percentage
        ("(3,4]", "(3,4]", True),  # half-open interval
        ("(3,4]", "(3,4)", False),  # interval endpoints matter
        ("(-\\infty, 0]", "(-\\infty,0]", True),  # infinite interval
        ("(0,9) \\cup (9,36)", "(0,9)\\cup(9,36)", True),  # union of intervals
        ("\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}", True),  # sets with \pm expanded
        ("1,-2", "-2,1", True),  # a comma list is compared as a set
        ("3, 5, 7", "3, 5", False),  # ... and must have the same elements
        ("3", "x=3", True),  # an assignment is unwrapped
        ("x=5", "5", True),  # ... on the gold side too
        ("y = 2x + 3", "2x+3", True),  # a line given as an equation
        ("x \\in [-2,7]", "[-2,7]", True),  # membership vs the interval itself
        ("\\text{(C)}", "C", True),  # MATH's own multiple-choice answers
        ("\\text{(C)}", "(C)", True),  # ... with parentheses
        ("\\text{(C)}", "\\textbf{(C)}", True),  # ... in bold
        ("\\text{(C)}", "D", False),  # ... another letter is wrong
        ("90^\\circ", "90", True),  # degrees: the sign is dropped
        ("90^\\circ", "\\frac{\\pi}{2}", False),  # degrees are not converted to radians
        ("5.4 \\text{ cents}", "5.4", True),  # units in \text are dropped
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", True),  # ... also after a fraction
        ("864 \\mbox{ inches}^2", "864", True),  # \mbox units with a power
        ("\\$18.90", "18.9", True),  # currency sign and trailing zero
        ("10,\\!080", "10080", True),  # thousands separator with \!
        ("\\text{Evelyn}", "Evelyn", True),  # a name
        ("\\text{Evelyn}", "Navin", False),  # another name
        ("3\\sqrt{13}", "\\sqrt{117}", True),  # simplified radical
        ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}", True),  # rationalised denominator
        ("(a+5)(b+2)", "ab+2a+5b+10", True),  # expanded polynomial
        (
            "\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}",
            "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\end{pmatrix}",
            True,
        ),  # vector
        ("2", "2.0000001", False),  # numeric precision is strict
        ("1", "0.999", False),  # ... no rounding to a nearby integer
        ("6", "six", False),  # words are not numbers
    ],
)
def test_check_equivalences(gold, pred, want):
    correct, reason = TASK.check(pred, ex(gold))
    assert correct is want, reason


@pytest.mark.parametrize(
    "gold",
    [
        "",  # no gold at all
        "\\frac{",  # broken LaTeX: math-verify falls back to the raw string, which is no parse
        "\\text{}",  # empty text
    ],
)
def test_unparseable_gold_is_none_never_true(gold):
    correct, reason = TASK.check(gold or "1", ex(gold))
    assert correct is None and "gold" in reason


@pytest.mark.parametrize(
    "gold, pred, want",
    [
        ("x>2", "(2,\\infty)", True),  # a relation gold accepts the interval (set-relation only when pred is a set)
        ("(2,\\infty)", "x>2", False),  # ... but an interval gold rejects the relation; swapped arguments flip both
        ("[-2,7]", "-2 \\le x \\le 7", False),  # the same asymmetry for a closed interval
    ],
)
def test_gold_goes_first(gold, pred, want):
    # math-verify's verify(gold, pred) is not symmetric; these pairs pin that check passes the gold first.
    assert TASK.check(pred, ex(gold))[0] is want


# --- scoring through Task.score -------------------------------------------------------------
@pytest.mark.parametrize(
    "response, mode, correct, format_ok",
    [
        (render("2 and 3 make 5", "", boxed="5"), "reward", True, True),  # the target format
        (render("so 5", "The sum is \\boxed{5}"), "reward", True, True),  # box after prose in the answer block
        (render("so 4", "", boxed="4"), "reward", False, True),  # wrong answer, good format
        ("<think>so</think>\nThe answer is 5.", "eval", True, False),  # eval: free text after the reasoning
        ("<think>so</think>\nThe answer is 5.", "reward", True, False),  # reward: correct but gated by format
        ("<answer>5</answer>", "eval", True, False),  # bare answer block
        ("<think>\\boxed{5}</think>\n<answer>\n\\boxed{4}\n</answer>", "eval", False, True),  # the last box counts
    ],
)
def test_score(response, mode, correct, format_ok):
    v = TASK.score(response, ex("5"), mode=mode)
    assert (v.correct, v.format_ok) == (correct, format_ok), v
    if mode == "reward":
        assert v.reward == float(correct is True and format_ok)


# --- guard and time limits ------------------------------------------------------------------
@pytest.mark.parametrize(
    "pred, why",
    [
        ("1" * 1_001, "too long"),  # over 1,000 characters
        ("(" * 51 + "1" + ")" * 51, "nested"),  # 51 nested brackets
        ("9^{9^{9^9}}", "tower"),  # a power tower would be evaluated exactly (hangs sympy)
        ("10^{10^{10}}", "tower"),  # ... even a short one
        ("999999999^{999999999}", "exponent"),  # a huge integer power (hangs)
        ("2^{1000}", "exponent"),  # exponents from 1000 up are refused
        ("9" * 900 + "^{999}", "power"),  # a 900,000-digit integer (0.3 s of sympy)
        ("(x+1)^{100000}", "exponent"),  # polynomial expansion (hangs)
        ("(a+b+c+d)^{20}", "exponent"),  # bracketed base over 12: multinomial expansion takes seconds
        ("(a+b+c+d+e+f+g)^{12}", "expansion"),  # 18,564 monomials: ran past 20 s in a worker thread
        ("(a+b+c+d)^{12}", "expansion"),  # 455 monomials (0.8 s)
        ("(a+b)(c+d)(e+f)(g+h)(i+j)(k+l)(m+n)", "expansion"),  # a product of sums, 128 monomials (0.3 s)
        ("1000000!", "factorial"),  # 7-digit factorial (seconds)
        ("(10^{9})!", "factorial"),  # factorial of a power (hangs)
        ("\\binom{100000}{5000}", "factorial"),  # huge binomial (hangs)
        ("(99999!)!", "factorial"),  # factorial of a factorial: ran past 20 s in a worker thread
        ("\\Gamma(99999999)", "factorial"),  # Gamma of an 8-digit number: past 20 s
        ("\\binom{\\binom{99999}{50000}}{50000}", "factorial"),  # a binomial of a binomial: past 20 s
        ("\\binom{99999}{50000}", "factorial"),  # 5 digits are already too many for a binomial (hangs)
        ("(10!)!", "nested factorial"),  # small numbers, nested: 3628800!
        ("\\binom{\\binom{20}{10}}{3}", "nested factorial"),  # a binomial inside a binomial
        ("{20 \\choose {3!}}", "nested factorial"),  # \choose with a factorial inside
        ("\\Gamma(\\Gamma(5))", "nested factorial"),  # Gamma of Gamma
    ],
)
def test_guard_refuses_sympy_bombs_fast(pred, why):
    correct, reason = TASK.check(pred, ex("3"))
    assert cpu_seconds(lambda: TASK.check(pred, ex("3"))) < 0.05
    assert correct is False and why in reason


@pytest.mark.parametrize(
    "pred",
    [
        "x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1",  # many small powers
        "\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]",  # powers inside an interval
        "2^{999}",  # largest allowed exponent on a number
        "99999999999999999999^{999}",  # a 20,000-digit power (2 ms)
        "(x+1)^{12}",  # largest allowed exponent on a bracketed base with a variable
        "(x+1)(x+2)(x+3)",  # a product of a few sums
        "\\left(\\frac{1}{2}\\right)^{20}",  # a bracketed number may take a bigger power
        "12!",  # a small factorial
        "9999!",  # the largest refused-free factorial (ms)
        "5!!",  # a double factorial is not a nested one
        "3! \\cdot 4!",  # two factorials side by side
        "\\frac{10!}{5!5!}",  # ... in a fraction
        "\\binom{10}{3}\\binom{7}{2}",  # two binomials side by side
        "\\Gamma(5)",  # a small Gamma
        "\\begin{pmatrix} 16/49 \\\\ 48/49 \\\\ 24/49 \\end{pmatrix}",  # a matrix
    ],
)
def test_guard_lets_ordinary_answers_through(pred):
    assert m.sympy_bomb(pred) is None


def test_check_off_the_main_thread_matches_the_main_thread():
    # math-verify runs in a worker process whichever thread calls, so the verdicts are the same
    cases = [("0.5", "\\frac{1}{2}"), ("3", "4"), ("9^{9^{9}}", "3"), ("x^2+1", "1+x^2")]
    main = [TASK.check(pred, ex(gold)) for pred, gold in cases]
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(lambda c: TASK.check(c[0], ex(c[1])), cases)) == main
    assert [c for c, _ in main] == [True, False, False, True]


SLOW = "\\int_0^1 \\sin(x^3)\\cos(x^5) dx"  # passes the guard; math-verify takes ~5 s on it


@pytest.mark.parametrize("thread", ["main", "worker"])
def test_time_limit_gives_none_in_every_thread(monkeypatch, thread):
    monkeypatch.setattr(m, "VERIFY_SOFT_S", 0.3)
    assert m.sympy_bomb(SLOW) is None
    assert TASK.check("3", ex("3"))[0] is True  # a worker started, the gold parsed: only the limit is timed

    def run():
        start = time.perf_counter()
        return TASK.score(render("r", "", boxed=SLOW), ex("3"), mode="reward"), time.perf_counter() - start

    if thread == "main":
        verdict, elapsed = run()
    else:
        with ThreadPoolExecutor(max_workers=1) as pool:
            verdict, elapsed = pool.submit(run).result()
    assert verdict.correct is None and "not verified: time limit of 0.3 s hit" in verdict.reason, verdict
    assert verdict.format_ok and verdict.reward == 0.0
    assert elapsed < 0.3 + m.bounded.GRACE_S + 1.0  # the soft limit, plus a busy machine's slack
    assert TASK.check("0.5", ex("1/2"))[0] is True  # the worker is still usable


@pytest.mark.timeout(0)  # no pytest-timeout alarm: this test arms its own timer
def test_foreign_timer_untouched():
    old = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 100.0)  # someone else's timer (e.g. pytest-timeout)
    try:
        assert TASK.check("0.5", ex("1/2"))[0] is True
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 90  # still armed ...
        assert signal.getsignal(signal.SIGALRM) is not old  # ... with their handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_missing_math_verify_raises_import_error(monkeypatch):
    # dianjin.verl_reward.preflight reports an ImportError naming math_verify as a missing dependency
    real = m.importlib.util.find_spec
    monkeypatch.setattr(
        m.importlib.util, "find_spec", lambda name, *a: None if name == "math_verify" else real(name, *a)
    )
    m._require_math_verify.cache_clear()  # found once, it is not looked up again
    with pytest.raises(ImportError) as err:
        TASK.check("0.5", ex("1/2"))
    assert err.value.name == "math_verify"
    monkeypatch.undo()
    assert TASK.check("0.5", ex("1/2"))[0] is True


def test_sympy_stays_out_of_this_process():
    code = "import sys; from dianjin.tasks import get_task; get_task('math500').check('0.5', {'gold': '1/2'}); print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


# --- real data ------------------------------------------------------------------------------
def _norm(answer: str) -> str:
    """Spacing and assignment-insensitive form, to pick a *different* answer for the wrong case."""
    answer = re.sub(r"\s|\\!|\\left|\\right", "", answer)
    return re.sub(r"^[a-z]=", "", answer)


@pytest.mark.realdata
def test_real_math500_every_gold_scores_right_and_another_scores_wrong(real_data):
    exs = TASK.load(str(real_data / "math500" / "test.jsonl"))
    assert len(exs) == 500 and len({e["id"] for e in exs}) == 500
    start = time.perf_counter()
    wrong = []
    for i, example in enumerate(exs):
        right = TASK.score(render("reasoning", "", boxed=example["gold"]), example, mode="reward")
        if right.correct is not True or right.reward != 1.0:
            wrong.append(("own answer", example["id"], right))
        # the next problem whose answer is different, e.g. "5" after "5" or "x=5" is skipped
        other = next(
            exs[(i + j) % 500] for j in range(1, 500) if _norm(exs[(i + j) % 500]["gold"]) != _norm(example["gold"])
        )
        miss = TASK.score(render("reasoning", "", boxed=other["gold"]), example, mode="reward")
        if miss.correct is not False:
            wrong.append(("other answer", example["id"], other["gold"], miss))
    elapsed = time.perf_counter() - start
    assert not wrong, wrong[:5]
    assert elapsed < 30, f"1,000 checks took {elapsed:.1f} s"
