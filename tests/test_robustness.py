"""Every task scores pathological responses quickly and never raises, in the main thread and in a
worker thread; no regex or sympy call runs without a bound, in any thread.

The cost counted is this process's CPU time plus the CPU time MATH-500's math-verify calls took in
their worker processes (`dianjin.tasks.bounded`), so a sympy blow-up cannot hide in a child.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dianjin.tasks import TASKS, bounded

LIMIT_S = 0.05  # per scoring call, best of 3

# label: (task, example), one minimal example per task (as a `dianjin score` line would give it), plus
# variants whose extractor differs.
SCORERS = {
    "cflue": ("cflue", {"gold": "AC", "choices": {"A": "债券", "B": "股票", "C": "基金", "D": "期货"}}),
    "cflue_oe": ("cflue_oe", {"gold": "提高存款准备金率", "question": "央行如何收紧流动性？"}),
    "finqa": ("finqa", {"gold": 0.2}),
    "math500": ("math500", {"gold": "\\frac{1}{2}"}),
    "gpqa": ("gpqa", {"gold": "C", "choices": dict(zip("ABCD", ("w", "x", "y", "z")))}),
    "ccc": ("ccc", {"gold": "violation"}),
    "fincalc": ("fincalc", {"gold": "12.34", "unit": "%", "form": "open"}),
    # the option-letter extractor of FinCalc's multiple-choice form
    "fincalc_mcq": ("fincalc", {"gold": "B", "form": "mcq", "choices": dict(zip("ABCD", ("1%", "2%", "3%", "4%")))}),
}


def strict(box: str) -> str:
    """A response in the target format with `box` boxed, so reward mode reaches the box too."""
    return f"<think>x</think><answer>\\boxed{{{box}}}</answer>"


RESPONSES = {
    # --- size and structure ---
    "1MB of text": "x" * 1_000_000 + "\\boxed{A}",  # a huge response, answer at the end
    "1MB of digits": "1 " * 500_000,  # a million number candidates
    "10k unmatched braces": "\\boxed{" + "{" * 10_000,  # a box that never closes
    "10k unclosed boxes": "\\boxed{" * 10_000,  # many boxes, none closed
    "10k think tags": "<think>" * 10_000 + "<answer>\\boxed{A}</answer>",  # the format gate's tag counts
    "deep parentheses": strict("(" * 5_000 + "1" + ")" * 5_000),  # 5,000 nested brackets in the box
    "deep fractions": "\\boxed{" + "\\frac{1}{" * 2_000 + "2" + "}" * 2_000 + "}",  # 2,000 nested \frac
    "10k answer tags": "<answer>" * 10_000 + "违规 是否违规 no violation",  # the answer block search
    "empty": "",  # nothing at all
    "huge nested braces": strict("{" * 20_000 + "1" + "}" * 20_000),  # 20,000 balanced braces in a box
    "5,000-digit number": strict("9" * 5_000),  # too long for sympy, too long for a float
    "5,000-digit number in prose": "The answer is " + "9" * 5_000,  # ... found by the phrase rules
    "long \\frac chain": strict("\\frac{1}{2}+" * 100 + "1"),  # 1,200 characters of fractions
    "deep continued fraction": strict("\\frac{1}{1+" * 60 + "x" + "}" * 60),  # 60 levels (sympy: seconds)
    "sum of 600 \\frac": "\\boxed{" + "\\frac{1}{2}" * 600 + "}",  # 6,600 characters in one box
    "overflowing exponent": strict("1e999999999"),  # float('inf') and Decimal blow-ups
    "overflowing percent": "The answer is 1e999999999%",  # ... in prose, with a unit
    # --- sympy bombs (MATH-500's guard refuses them before any worker call) ---
    "factorial of a factorial": strict("(99999!)!"),  # ran past 20 s in a worker thread
    "multinomial expansion": strict("(a+b+c+d+e+f+g)^{12}"),  # 18,564 monomials: past 20 s
    "Gamma of a huge number": strict("\\Gamma(99999999)"),  # an 8-digit factorial: past 20 s
    "binomial of a binomial": strict("\\binom{\\binom{99999}{50000}}{50000}"),  # past 20 s
    "small nested factorial": strict("(10!)!"),  # 3628800!: small numbers, nested
    "product of sums": strict("".join(f"({c}+{c}{c}+1)" for c in "abcdefghij")),  # 3^10 monomials
    "huge integer power": strict("9" * 900 + "^{999}"),  # a 900,000-digit integer
    "power tower": strict("9^{9^{9^{9}}}"),  # evaluated exactly, it never ends
    # --- repeated words: an answer-phrase regex must not rescan a run from every position ---
    "final * 6000": "final " * 6_000,  # CFLUE's scan was quadratic here (1.9 s)
    "correct * 6000": "correct " * 6_000,  # the other qualifier of "the correct answer is"
    "right final * 3000": "right final " * 3_000,  # qualifiers mixed
    "answer * 6000": "answer " * 6_000,  # the keyword without a verb
    "answer is * 3000": "answer is " * 3_000,  # phrases with nothing after them
    "Answer: * 4000": "Answer: " * 4_000,  # ... with a colon
    "答案 * 10000": "答案" * 10_000,  # Chinese keyword, repeated
    "故选 * 10000": "故选" * 10_000,  # choosing verb, repeated
    "不选 * 10000": "不选" * 10_000,  # a negated choice, repeated
    "choose * 5000": "choose " * 5_000,  # English choosing verb, repeated
    "A * 15000": "A " * 15_000,  # a lone option letter, repeated
    "(A) * 8000": "(A) " * 8_000,  # a bracketed option letter, repeated
    "A. * 10000": "A. " * 10_000,  # an option label, repeated
    "违规 * 10000": "违规" * 10_000,  # CCC's verdict word, repeated
    "verdict * 5000": "final verdict " * 2_500,  # CCC's anchor phrase, repeated
    # --- a phrase, then a long run of spaces and no answer: backtracking between quantifiers ---
    "answer + 30k spaces": "answer" + " " * 30_000 + "x",  # FinCalc's letter scan was cubic here
    "answer is + 30k spaces": "answer is" + " " * 30_000 + "x",  # GPQA's was quadratic (hung)
    "answer: A + 30k spaces": "answer: A" + " " * 30_000 + "x",  # after the letter: the lookahead's run
    "答案 + 30k spaces": "答案" + " " * 30_000 + "x",  # the Chinese keyword
    "30k spaces + answer": " " * 30_000 + "answer",  # the run before the keyword
    "30k newlines": "\n" * 30_000,  # line-based rules
    "30k dollars": "$" * 30_000,  # inline-maths delimiters, none closed
    "answer: \\( * 10000": "answer: " + "\\(" * 10_000,  # inline maths openers after a phrase
    "1, * 15000": "1," * 15_000,  # a thousands-separated number that never ends
}


def test_every_task_is_covered():
    assert {task for task, _ in SCORERS.values()} == set(TASKS)


def cost_seconds(fn, repeat: int = 3) -> float:
    """Best-of-`repeat` CPU time of `fn()`: this process's plus the bounded workers' (see the docstring)."""
    pool, best = bounded.default_pool(), float("inf")
    for _ in range(repeat):
        t, w = time.process_time(), pool.cpu_seconds
        fn()
        best = min(best, time.process_time() - t + pool.cpu_seconds - w)
    return best


def score_all_modes(label: str, response: str) -> list[tuple]:
    """(mode, verdict, cost) for eval and reward mode; never raises."""
    task, example = SCORERS[label]
    scorer, out = TASKS[task], []
    for mode in ("eval", "reward"):
        verdict = scorer.score(response, example, mode=mode)
        out.append((mode, verdict, cost_seconds(lambda m=mode: scorer.score(response, example, mode=m))))
    return out


@pytest.fixture(scope="module")
def worker_thread():
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


@pytest.mark.parametrize("thread", ["main", "worker"])
@pytest.mark.parametrize("label", sorted(SCORERS))
@pytest.mark.parametrize("kind", list(RESPONSES))
def test_pathological_response_is_fast_and_safe(kind, label, thread, worker_thread):
    def run():
        return score_all_modes(label, RESPONSES[kind])

    if thread == "main":
        assert threading.current_thread() is threading.main_thread()
        results = run()
    else:
        results = worker_thread.submit(run).result(timeout=60)
    for mode, verdict, cost in results:
        assert verdict.correct in (True, False, None)
        assert cost < LIMIT_S, (kind, label, thread, mode, f"{cost * 1000:.1f} ms", verdict.reason)
