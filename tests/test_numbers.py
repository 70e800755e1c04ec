"""Number parsing and tolerant comparison (dianjin.numbers).

    .venv/bin/python -m pytest -q tests/test_numbers.py
"""

from __future__ import annotations


import pytest
from timing import cpu_seconds

from dianjin.numbers import decimals, find_number, numbers_match, parse_number, parse_number_ex


@pytest.mark.parametrize(
    "text, value, percent",
    [
        ("42", 42.0, False),  # bare integer
        ("1,234.5", 1234.5, False),  # thousands separator
        ("$1,234.5", 1234.5, False),  # dollar sign
        ("US$3.4", 3.4, False),  # prefixed dollar
        ("¥12", 12.0, False),  # yen / yuan sign
        ("￥１２３", 123.0, False),  # full-width yuan sign and digits
        ("€3", 3.0, False),  # euro
        ("£4.5", 4.5, False),  # pound
        ("USD 5", 5.0, False),  # currency code before
        ("RMB 6", 6.0, False),  # RMB code
        ("7元", 7.0, False),  # yuan character after
        ("１２３．５", 123.5, False),  # full-width digits and point
        ("12.5%", 12.5, True),  # percent keeps the written value and flags it
        ("12.5 %", 12.5, True),  # spaced percent sign
        ("12.5\\%", 12.5, True),  # LaTeX-escaped percent
        ("12.5％", 12.5, True),  # full-width percent sign
        ("12 percent", 12.0, True),  # percent as a word
        ("3 per cent", 3.0, True),  # British spelling
        ("百分之12.5", 12.5, True),  # Chinese leading 百分之
        ("上升了2.5个百分点", 2.5, True),  # Chinese percentage points
        ("(1,234)", -1234.0, False),  # accounting negative
        ("$(1,234)", -1234.0, False),  # accounting negative after currency
        ("($1,234)", -1234.0, False),  # currency inside the parentheses
        ("(12.5%)", -12.5, True),  # negative percentage in parentheses
        ("the balance was (1,234)", -1234.0, False),  # accounting negative after words
        ("1,234 (12%)", 12.0, True),  # parenthesis after a number is an aside, not a sign
        ("−3.5", -3.5, False),  # unicode minus U+2212
        ("–3.5", -3.5, False),  # en dash used as a minus
        ("－3", -3.0, False),  # full-width hyphen-minus
        ("the answer is -5", -5.0, False),  # spaced sign after words
        ("-$5", -5.0, False),  # sign before currency
        ("$ -1,234", -1234.0, False),  # sign after currency (FinQA tokenised style)
        ("(-5)", -5.0, False),  # explicit sign inside parentheses stays negative
        ("2019-2020", 2020.0, False),  # hyphen between years is not a sign
        ("COVID-19", 19.0, False),  # hyphen glued to a word is not a sign
        ("10 - 5", 5.0, False),  # minus after a number is an operator
        ("\\frac{3}{4}", 0.75, False),  # LaTeX fraction
        ("\\dfrac{-1}{2}", -0.5, False),  # display fraction with signed numerator
        ("-\\frac{1}{2}", -0.5, False),  # negated fraction
        ("\\tfrac{1,000}{8}", 125.0, False),  # text-style fraction with separators
        ("3/4", 0.75, False),  # plain fraction
        ("1.2e6", 1.2e6, False),  # scientific notation
        ("1.2E-3", 1.2e-3, False),  # scientific notation, negative exponent
        ("1.2 \\times 10^{6}", 1.2e6, False),  # LaTeX scientific notation
        ("1.2 × 10^6", 1.2e6, False),  # unicode times sign
        ("3 \\times 10^{-2}", 0.03, False),  # negative power of ten
        ("approximately 12.3 million", 12.3e6, False),  # leading text and unit word
        ("$2.5 billion dollars", 2.5e9, False),  # unit word then trailing text
        ("US$3.4 bn", 3.4e9, False),  # abbreviated billion
        ("5 thousand", 5000.0, False),  # thousand
        ("500K", 5e5, False),  # glued K
        ("3.4M", 3.4e6, False),  # glued M
        ("1.2B", 1.2e9, False),  # glued B
        ("12 B", 12.0, False),  # spaced single letter is not a unit (may be an option letter)
        ("1.2万亿元", 1.2e12, False),  # Chinese 万亿 before 万
        ("3.5亿", 3.5e8, False),  # Chinese 亿
        ("约1,234万元", 1.234e7, False),  # Chinese 万 with separator and leading text
        ("营业收入为3百万元", 3e6, False),  # Chinese 百万
        ("1\\,234", 1234.0, False),  # LaTeX thin space as thousands separator
        ("1{,}234", 1234.0, False),  # LaTeX braced comma
        ("\\text{\\$}1,234 \\text{ million}", 1.234e9, False),  # LaTeX text wrappers
        ("Answer: 5.", 5.0, False),  # sentence-final full stop is not a decimal point
        (".5", 0.5, False),  # leading decimal point
        ("revenue rose from 100 to 120, i.e. 20%", 20.0, True),  # several numbers: the last wins
        ("12/31/2019", 2019.0, False),  # a date: last number wins
    ],
)
def test_parse_number_ex(text, value, percent):
    got = parse_number_ex(text)
    assert got is not None
    assert got[0] == pytest.approx(value, rel=1e-12)
    assert got[1] is percent
    assert parse_number(text) == got[0]


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty
        "no number here",  # words only
        "yes",  # yes/no is not a number
        "无法确定",  # Chinese, no digits
        "1/0",  # division by zero is not a number
        "$",  # a lone currency sign
        "2 \\times 10^{400}",  # overflows: not a number (and no exception)
        "\\frac{1e308}{1e-308}",  # quotient overflows
        "1e308 trillion",  # unit multiplication overflows
        "1" * 400,  # a 400-digit literal is infinite as a float
    ],
)
def test_parse_number_none(text):
    assert parse_number(text) is None
    assert parse_number_ex(text) is None


@pytest.mark.parametrize(
    "text, mantissa, scale",
    [
        ("12.3 million", 12.3, 1e6),  # unit kept apart from the written number
        ("-4 bn", -4.0, 1e9),  # the sign is on the mantissa
        ("7", 7.0, 1.0),  # no unit
    ],
)
def test_find_number_parts(text, mantissa, scale):
    found = find_number(text)
    assert found is not None and found.mantissa == mantissa and found.scale == scale
    assert found.value == pytest.approx(mantissa * scale)


def test_number_at_end_of_long_text():
    # the number sits after a long run of prose: the window ends at the last digit
    assert parse_number("the result is 42 " + "blah " * 50_000) == 42.0
    # the last candidate is unusable ("1/0"), so an earlier window is read
    assert parse_number("7 " + "x " * 5_000 + "1/0") == 7.0


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,  # 1 MB without digits
        "1 " * 500_000,  # 1 MB of numbers
        "{" * 10_000 + "(" * 10_000 + "5",  # unmatched braces and parentheses
        "\\frac{" * 10_000,  # unclosed fractions
        "1/0 " * 250_000,  # 1 MB of unusable candidates (scan is capped)
        "1 \\times 10^{" + "9" * 5000 + "}",  # huge exponent text
    ],
)
def test_parse_is_fast(text):
    assert cpu_seconds(lambda: parse_number_ex(text)) < 0.05


@pytest.mark.parametrize(
    "pred, gold, kwargs, expected",
    [
        (12.3, 12.3, {}, True),  # exact
        (0.0788, 0.07879, {}, True),  # within 1e-3 relative
        (0.0790, 0.07879, {}, False),  # 2.7e-3 relative: too far
        (7.88, 0.07879, {}, True),  # percent written for a fraction gold (x100)
        (7.88, 0.07879, {"percent_ambiguity": False}, False),  # ... not without the relaxation
        (500.0, 5.0, {}, True),  # gold*100
        (0.05, 5.0, {}, True),  # gold/100
        (7.8712, 7.87, {}, True),  # rounds half-up to the gold's 2 decimals
        (7.875, 7.88, {}, True),  # half-up rounding (not banker's)
        (12.36, 12.3, {}, False),  # rounds to 12.4
        (1234.0, 1200.0, {}, False),  # 2.8% off an integer gold
        (-5.0, 5.0, {}, False),  # sign matters
        (0.0, 0.0, {}, True),  # zero gold: absolute floor
        (1e-12, 0.0, {}, True),  # zero gold, tiny float noise
        (0.6, 0.0, {}, False),  # zero gold: 0.6 rounds to 1
        (1.0005, 1.0, {"rel_tol": 1e-4}, False),  # an integral gold is never matched by rounding
        (3.4, 3.0, {}, False),  # gold 3.0 (exe_ans, exact) does not accept 3.4
        (3.0, 3.4, {}, False),  # a whole-number prediction does not round-match 3.4
        (0.0012, 0.00123, {}, False),  # 2.4% off: a coarser prediction is not rounded up to match
        (1.1, 1.05, {"rel_tol": 1e-4}, False),  # tighter tolerance and precision both fail
        (float("nan"), 1.0, {}, False),  # NaN never matches
        (float("inf"), float("inf"), {}, False),  # infinities never match
    ],
)
def test_numbers_match(pred, gold, kwargs, expected):
    assert numbers_match(pred, gold, **kwargs) is expected


@pytest.mark.parametrize(
    "x, places",
    [
        (12.0, 0),  # integral float
        (0.07879, 5),  # FinQA exe_ans precision
        (0.07879 * 100, 3),  # float noise from scaling is ignored
        (1e-7, 7),  # tiny numbers in exponent form
        (1.5e20, 0),  # huge numbers
        (-3.25, 2),  # negative
    ],
)
def test_decimals(x, places):
    assert decimals(x) == places
