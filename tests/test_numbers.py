"""Number parsing and tolerant comparison (dianjin.tasks.numeric).

.venv/bin/python -m pytest -q tests/test_numbers.py
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from timing import cpu_seconds

from dianjin.tasks.numeric import (
    decimals,
    find_number,
    numbers_match,
    parse_number,
    parse_number_ex,
    rounds_to,
    significant_digits,
)


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
    "text, written",
    [
        ("1.50", Decimal("1.50")),  # trailing zero kept: the writer stated two decimals
        ("73,576", Decimal(73576)),  # separators dropped, precision to the unit
        ("-1,234.50 million", Decimal("-1234.50")),  # signed mantissa, before the unit word
        ("(12.5%)", Decimal("-12.5")),  # accounting negative carries to the written form
        ("56%", Decimal(56)),  # percent keeps the written number
        ("1.2e6", Decimal("1.2E+6")),  # scientific notation: two significant digits, unit 1e5
        ("1.2 \\times 10^{6}", Decimal("1.2E+6")),  # LaTeX power of ten, same precision
        ("3/4", None),  # a fraction has no written precision
        ("\\frac{1}{2}", None),  # nor does a LaTeX fraction
    ],
)
def test_find_number_written(text, written):
    found = find_number(text)
    assert found is not None
    if written is None:
        assert found.written is None
    else:  # same digits and exponent, not just the same value ("1.50" is not "1.5")
        assert found.written.as_tuple() == written.as_tuple()


@pytest.mark.parametrize(
    "written, digits",
    [
        ("56", 2),  # two digits
        ("0.05", 1),  # leading zeros do not count
        ("0.050", 2),  # a written trailing zero does
        ("20", 2),  # an integer's trailing zero counts (precision to the unit)
        ("1.2E+6", 2),  # exponent form
        ("0", 0),  # zero has no significant digit
        ("-4.9", 2),  # sign ignored
    ],
)
def test_significant_digits(written, digits):
    assert significant_digits(Decimal(written)) == digits


@pytest.mark.parametrize(
    "pred, gold, kwargs, expected",
    [
        # FinQA's own human answers against exe_ans: the gold rounds to the answer
        ("56", 0.56197, {}, True),  # "56%" for a fraction gold: 56.197 rounds to 56
        ("1.16", 1.15663, {}, True),  # 1.15663 rounds to 1.16 at two decimals
        ("4.9", 4.85514, {}, True),  # 4.85514 rounds to 4.9 at one decimal
        ("0.56", 56.197, {}, True),  # fraction written for a percent gold (gold / 100)
        ("-6.1", -0.06063, {}, True),  # negative percent: -6.063 rounds to -6.1
        ("7.9", 0.07879, {}, True),  # 7.879 rounds to 7.9 (was a mismatch under the 1e-3 rule)
        ("7.87", 0.07879, {}, False),  # 7.879 rounds to 7.88, not 7.87: a truncation is not a rounding
        ("0.0012", 0.00123, {}, True),  # 2.4% off, but 0.00123 rounds to 0.0012
        ("12", 0.125, {}, True),  # a tie may round down ...
        ("13", 0.125, {}, True),  # ... or up
        ("1.45", 0.0145, {}, True),  # decimal scaling: 0.0145 * 100 is 1.45, not 1.4499999999999997
        ("1.2E+6", 1234567.0, {}, True),  # exponent form: precision to 1e5
        ("74", 73.576, {}, True),  # an integer is precise to the unit
        # false positives the rule must not create
        ("2", 2.4, {}, False),  # one significant digit is not enough, though 2.4 rounds to 2
        ("0.05", 0.04545, {}, False),  # one significant digit (FinQA test record: "0.05" for 0.04545)
        ("5", 5.0, {}, True),  # ... but an exact one-digit answer still matches by tolerance
        ("20", 24.0, {}, False),  # "20" is precise to the unit, not to the ten
        ("1.2", 1.15663, {}, True),  # two digits: 1.15663 rounds to 1.2
        ("1.15", 1.15663, {}, False),  # rounds to 1.16: 1.15 is 0.6% off, outside 1e-3
        ("1.1567", 1.15663, {}, True),  # more digits than the gold: within the 1e-3 tolerance
        ("1.1580", 1.15663, {}, False),  # more digits than the gold and 1.2e-3 off: no rounding rescue
        ("3.4", 3.0, {}, False),  # a finer prediction never rounds onto a coarser gold's neighbour
        ("56", 0.56197, {"percent_ambiguity": False}, False),  # the percent reading needs the relaxation
        ("NaN", 1.0, {}, False),  # not a number
        ("Infinity", 1.0, {}, False),  # not finite
    ],
)
def test_numbers_match_written(pred, gold, kwargs, expected):
    assert numbers_match(Decimal(pred), gold, **kwargs) is expected


@pytest.mark.parametrize(
    "written, gold, kwargs, expected",
    [
        ("1.16", 1.15663, {}, True),  # the rule on its own
        ("2", 2.4, {"min_digits": 1}, True),  # the two-digit floor is a parameter
        ("10", 1026.0, {}, True),  # a bare "10" may be a fraction of a percent gold: 10.26 rounds to 10
        ("10", 1026.0, {"percent": True}, False),  # "10%" is a percent: not compared with 1026 / 100
        ("56", 0.56197, {"percent": True}, True),  # "56%" against a fraction gold (x100) stays
        ("56.2", 56.197, {"percent": True}, True),  # "56.2%" against a percent gold stays
        ("56", float("nan"), {}, False),  # NaN gold
        ("56", "x", {}, False),  # a gold that is not a number
        (1.16, 1.16, {}, False),  # a float is not a written number: it has no precision
    ],
)
def test_rounds_to(written, gold, kwargs, expected):
    pred = Decimal(written) if isinstance(written, str) else written
    assert rounds_to(pred, gold, **kwargs) is expected


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
