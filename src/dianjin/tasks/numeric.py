"""Reading a number out of an answer, and deciding whether two numbers agree.

Shared by the FinQA and FinCalc scorers. Model answers write numbers in many ways:
"$1,234.5", "(1,234)" (accounting negative), "−3" (unicode minus), "１２３" (full-width),
"12.5%", "\\frac{3}{4}", "3/4", "1.2e6", "1.2 \\times 10^{6}", "approximately 12.3 million",
"1.2万亿元". `find_number` reads them all; `parse_number` / `parse_number_ex` are the short forms.

Rules (documented because they are choices, not facts):

- **Several numbers: the last one wins.** Final answers usually end with the number
  ("... so the margin is 12.5%"); in "2019 to 2020 it grew 5%" the answer is 5%.
- Unit words multiply: thousand/million/billion/trillion (and "bn", "mn", "mln", and a K/M/B
  letter glued to the number: "500K", "3.4M", "1.2B"), 千/万/亿/百万/千万/万亿. A spaced single
  letter ("12 B") is not a unit: it may be an option letter or metres.
- Percent ("%", "\\%", "percent", "per cent", "pct", "个百分点", a leading "百分之") keeps the
  written value ("12.5%" -> 12.5) and sets the `percent` flag; callers decide about the scale.
- "(1,234)" is negative only when the parenthesised number does not follow another number:
  in "1,234 (12%)" the parenthesis is an aside, not a sign.
- A minus sign glued to a digit or letter is a hyphen ("2019-2020" ends with 2020, not -2020).
- Only a window ending at the text's last digit is read (`TAIL_CHARS`), so a 1 MB answer costs
  about as much as a short one.

`numbers_match` is the tolerant comparison recommended in docs/upstream.md §9.1 (FinQA):
relative tolerance, or the prediction rounded to the gold's precision, and optionally the
percent/fraction ambiguity (FinQA's `exe_ans` stores "7.88%" as 0.0788). Given the prediction as
written (a `Decimal`, `NumberMatch.written`), it also accepts a prediction stated with fewer
digits than the gold when the gold rounds to it at the prediction's precision ("1.16" for
1.15663), provided the prediction has at least two significant digits (`rounds_to`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from dianjin.tasks.text import unwrap_latex

__all__ = [
    "NumberMatch",
    "decimals",
    "find_number",
    "numbers_match",
    "parse_number",
    "parse_number_ex",
    "rounds_to",
    "significant_digits",
]

# Numbers are read from a window of this many characters before the last digit; windows move
# backwards (only when every candidate in one is unusable, e.g. "1/0") up to MAX_SCAN characters.
TAIL_CHARS = 4096
MAX_SCAN = 16_384
_SUFFIX_CHARS = 64
_DIGITS = "0123456789０１２３４５６７８９"
_SPACE = re.compile(r"\s")
# Tolerance used when the gold is exactly zero (a relative tolerance would demand exact equality).
ABS_FLOOR = 1e-9
# A prediction needs this many significant digits before its written precision counts ("2" is
# too coarse to be right about 2.4; "2.4", "24%" and "0.56" are not).
MIN_DIGITS = 2
# Decimal arithmetic for `rounds_to`: wide enough that a float's repr and a long literal subtract exactly.
_EXACT = Context(prec=80)

# --- unit multipliers (a dict, longest spellings first in the regex) --------------------------
_WORD_UNITS: dict[str, float] = {
    "thousand": 1e3,
    "thousands": 1e3,
    "million": 1e6,
    "millions": 1e6,
    "mn": 1e6,
    "mln": 1e6,
    "billion": 1e9,
    "billions": 1e9,
    "bn": 1e9,
    "trillion": 1e12,
    "trillions": 1e12,
}
_GLUED_UNITS: dict[str, float] = {"K": 1e3, "k": 1e3, "M": 1e6, "B": 1e9}  # only directly after a digit
_CJK_UNITS: dict[str, float] = {
    "千": 1e3,
    "万": 1e4,
    "十万": 1e5,
    "百万": 1e6,
    "千万": 1e7,
    "亿": 1e8,
    "十亿": 1e9,
    "百亿": 1e10,
    "千亿": 1e11,
    "万亿": 1e12,
}


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# --- the number literal and its surroundings ---------------------------------------------------
_LIT = r"(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_EXP = r"(?:[eE][-+]?\d+)?"
_SIGNED = rf"[-+]?\s*{_LIT}{_EXP}"
_CANDIDATE = re.compile(
    rf"\\[dt]?frac\s*\{{\s*(?P<fn>{_SIGNED})\s*\}}\s*\{{\s*(?P<fd>{_SIGNED})\s*\}}"  # \frac{a}{b}
    rf"|(?P<sn>{_LIT})\s*/\s*(?P<sd>{_LIT})(?![\d.])"  # a/b
    rf"|(?P<num>{_LIT}{_EXP})"
    rf"(?:\s*(?:\\times|\\cdot|×|\*)\s*10\s*\^\s*\{{?\s*(?P<pow>[-+]?\d{{1,4}})\s*\}}?)?"  # 1.2 \times 10^{6}
)
_PERCENT_AFTER = re.compile(r"\s*(?:%|percent\b|per\s*cent\b|pct\b|个百分点|百分点)", re.IGNORECASE)
_UNIT_AFTER = re.compile(
    rf"\s*(?:(?P<word>{_alternation(_WORD_UNITS)})\b|(?P<cjk>{_alternation(_CJK_UNITS)}))", re.IGNORECASE
)
_GLUED_AFTER = re.compile(rf"(?P<glued>{_alternation(_GLUED_UNITS)})(?![A-Za-z])")
_CURRENCY = r"(?:US\$|HK\$|RMB|CNY|USD|EUR|GBP|\$|¥|€|£)"
# What may stand between a sign/parenthesis and the digits: currency, spaces.
_PREFIX = re.compile(rf"(?P<open>\(\s*)?(?P<sign>-\s*)?(?:{_CURRENCY}\s*)?(?P<sign2>-\s*)?$")
_PERCENT_BEFORE = re.compile(r"百分之\s*$")
_CLOSE_AFTER = re.compile(r"\s*\)")

# --- text clean-up before matching (LaTeX text wrappers: `dianjin.tasks.text.unwrap_latex`) -------
_MINUS_CHARS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-", "\u2014": "-"})
_LATEX_SUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\{,\}"), ","),  # 1{,}234
    (re.compile(r"(?<=\d)\\[,;!: ]\s*(?=\d{3}(?!\d))"), ""),  # 1\,234 thin-space separator
    (re.compile(r"\\[,;!: ]|~"), " "),
    (re.compile(r"\\left|\\right"), ""),
    (re.compile(r"\\([$%])"), r"\1"),
)


@dataclass(frozen=True)
class NumberMatch:
    """One number read from text.

    value: the signed number with units applied (`mantissa * scale`).
    mantissa: the signed number as written, before any unit word ("12.3 million" -> 12.3).
    scale: the unit multiplier (1.0 without a unit).
    percent: whether a percent marker was attached (the value is NOT divided by 100).
    span: the matched text, for messages.
    written: the signed mantissa exactly as written, digits and precision kept ("1.50" ->
        Decimal("1.50"), "1.2e6" -> Decimal("1.2E+6")); None for a fraction ("3/4", "\\frac").
    """

    value: float
    mantissa: float
    scale: float
    percent: bool
    span: str
    written: Decimal | None = None


def _clean(text: str) -> str:
    text = unwrap_latex(unicodedata.normalize("NFKC", text).translate(_MINUS_CHARS))
    for pattern, repl in _LATEX_SUBS:
        text = pattern.sub(repl, text)
    return text


def _to_float(literal: str) -> float:
    return float(re.sub(r"[\s,+]", "", literal))


def _read(text: str, m: re.Match[str]) -> NumberMatch | None:
    """Turn one candidate match into a NumberMatch, looking at what surrounds it."""
    try:
        if m.group("fn") is not None:
            num, den = _to_float(m.group("fn")), _to_float(m.group("fd"))
        elif m.group("sn") is not None:
            num, den = _to_float(m.group("sn")), _to_float(m.group("sd"))
        else:
            num, den = _to_float(m.group("num")), 1.0
            if m.group("pow") is not None:
                num *= 10.0 ** int(m.group("pow"))
        mantissa = num / den
    except (OverflowError, ZeroDivisionError):
        return None
    if not (math.isfinite(num) and math.isfinite(den) and math.isfinite(mantissa)):
        return None
    end = m.end()

    scale = 1.0
    glued = _GLUED_AFTER.match(text, end) if m.group("num") is not None else None
    unit = _UNIT_AFTER.match(text, end)
    if glued:
        scale, end = _GLUED_UNITS[glued.group("glued")], glued.end()
    elif unit:
        key = unit.group("word") or unit.group("cjk")
        scale = _WORD_UNITS.get(key.lower(), _CJK_UNITS.get(key, 1.0))
        end = unit.end()
    pct = _PERCENT_AFTER.match(text, end)
    before = text[max(0, m.start() - 16) : m.start()]
    percent = bool(pct) or bool(_PERCENT_BEFORE.search(before))
    if pct:
        end = pct.end()

    negative = False
    prefix = _PREFIX.search(before)
    if prefix:
        pstart = m.start() - len(prefix.group(0))
        ahead = text[:pstart].rstrip()
        prev = ahead[-1] if ahead else " "
        if prefix.group("sign2"):  # "$-5"
            negative = True
        elif prefix.group("sign"):
            sign_at = pstart + len(prefix.group("open") or "")
            sign_glued = sign_at > 0 and text[sign_at - 1].isalnum()
            # "-" glued to a word is a hyphen ("2019-2020", "COVID-19"); after a number it is an
            # operator ("10 - 5"); after "(" or elsewhere it is a sign ("is -5", "(-5)")
            negative = bool(prefix.group("open")) or not (sign_glued or prev.isdigit() or prev in "%)")
        # "(1,234)" is an accounting negative unless it is an aside after a number: "1,234 (12%)"
        if (
            prefix.group("open")
            and _CLOSE_AFTER.match(text, end)
            and not (prev.isdigit() or prev == "%" or _ends_with_unit(ahead))
        ):
            negative = True
    sign = -1.0 if negative else 1.0
    if not math.isfinite(mantissa * scale):
        return None
    written = None
    if m.group("num") is not None:
        written = Decimal(re.sub(r"[\s,+]", "", m.group("num")))
        if m.group("pow") is not None:
            written = written.scaleb(int(m.group("pow")), _EXACT)
        written = written.copy_negate() if negative else written
    return NumberMatch(sign * mantissa * scale, sign * mantissa, scale, percent, m.group(0), written)


_UNIT_TAIL = re.compile(rf"(?:{_alternation(_WORD_UNITS)}|{_alternation(_CJK_UNITS)})$", re.IGNORECASE)


def _ends_with_unit(text: str) -> bool:
    return bool(_UNIT_TAIL.search(text[-12:]))


def find_number(text: str) -> NumberMatch | None:
    """The last number in `text` with its sign, unit and percent flag; None when there is none."""
    if not text:
        return None
    end, scanned = len(text), 0
    while scanned < MAX_SCAN:
        last_digit = max(text.rfind(d, 0, end) for d in _DIGITS)
        if last_digit < 0:
            return None
        start = max(0, last_digit - TAIL_CHARS)
        if start > 0:  # do not start inside a token: move to the next whitespace
            cut = _SPACE.search(text, start, last_digit)
            start = cut.end() if cut else start
        end = min(end, last_digit + _SUFFIX_CHARS)  # room for "}", " million", "个百分点"
        chunk = _clean(text[start:end])
        for m in reversed(list(_CANDIDATE.finditer(chunk))):
            found = _read(chunk, m)
            if found is not None:
                return found
        scanned += end - start
        end = start
    return None


def parse_number_ex(text: str) -> tuple[float, bool] | None:
    """(value, is_percent) of the last number in `text`, units applied; None when there is none."""
    found = find_number(text)
    return None if found is None else (found.value, found.percent)


def parse_number(text: str) -> float | None:
    """The last number in `text` ("12.5%" -> 12.5, "(1,234)" -> -1234.0); None when there is none."""
    found = find_number(text)
    return None if found is None else found.value


def decimals(x: float) -> int:
    """Decimal places of `x` as a human would write it: 12.0 -> 0, 0.07879 -> 5, 7.879000000001 -> 3."""
    if not math.isfinite(x):
        return 0
    s = f"{x:.12g}"
    if "e" in s:
        mant, exp = s.split("e")
        frac = mant.split(".")[1] if "." in mant else ""
        return max(0, len(frac.rstrip("0")) - int(exp))
    return len(s.split(".")[1].rstrip("0")) if "." in s else 0


def round_half_up(x: float, places: int) -> float:
    """Round half away from zero at `places` decimals, as written (2.675 -> 2.68, not banker's)."""
    try:
        return float(Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
    except InvalidOperation:  # too many digits for the default context: fall back to round()
        return round(x, places)


def _close(pred: float, gold: float, rel_tol: float, places: int | None) -> bool:
    if abs(pred - gold) <= max(rel_tol * abs(gold), ABS_FLOOR):
        return True
    # Rounding the prediction to the gold's precision (or to `places` when the task fixes it), but
    # never to 0 decimals by default: an integral gold (exe_ans 3.0 is exact) must not accept 3.4.
    dg = decimals(gold) if places is None else places
    return dg >= 1 and round_half_up(pred, dg) == round_half_up(gold, dg)


def significant_digits(written: Decimal) -> int:
    """Significant digits of a number as written: "56" -> 2, "0.05" -> 1, "20" -> 2, "1.2E+6" -> 2, "0" -> 0."""
    digits = written.as_tuple().digits
    return len(digits) - next((i for i, d in enumerate(digits) if d), len(digits))


def rounds_to(
    written: Decimal, gold: float, percent_ambiguity: bool = True, min_digits: int = MIN_DIGITS, percent: bool = False
) -> bool:
    """Whether `gold` rounds to `written` at the precision it is written in ("1.16" for 1.15663).

    True when `written` has at least `min_digits` significant digits and
    |gold - written| <= half a unit of its last written digit (a tie may round either way:
    0.125 gives "12%" and "13%"). The arithmetic is decimal, on the gold's shortest repr, so
    0.0145 * 100 is 1.45, not 1.4499999999999997. With `percent_ambiguity`, also against gold * 100
    and gold / 100 ("56%" for 0.56197, "0.56" for 56.197); a prediction written with a percent
    sign (`percent`) is a percent, so only gold and gold * 100 ("10%" does not round-match 1026 by
    way of 10.26). Only a prediction coarser than the gold can pass this way without being equal
    to it: a finer one must agree within the tolerance of `numbers_match`.
    """
    try:
        gold = float(gold)
        if not (isinstance(written, Decimal) and written.is_finite() and math.isfinite(gold)):
            return False
        if significant_digits(written) < min_digits:
            return False
        exp = written.as_tuple().exponent
        assert isinstance(exp, int)  # finite: not "n"/"N"/"F"
        half = Decimal(5).scaleb(exp - 1)
        g = Decimal(repr(gold))
        golds = [g, g.scaleb(2, _EXACT), g.scaleb(-2, _EXACT)] if percent_ambiguity else [g]
        golds = golds[:2] if percent else golds
        return any(_EXACT.subtract(x, written).copy_abs() <= half for x in golds)
    except (InvalidOperation, OverflowError, TypeError, ValueError):
        return False


def numbers_match(
    pred: float | Decimal, gold: float, rel_tol: float = 1e-3, percent_ambiguity: bool = True, places: int | None = None
) -> bool:
    """Whether `pred` agrees with `gold`.

    True when |pred - gold| <= rel_tol * |gold| (at least ABS_FLOOR, for gold == 0), or when pred
    rounded half-up to the gold's decimal places equals gold, for a gold with at least one decimal
    (gold 7.87, pred 7.8712; gold 3.0 does not accept 3.4). A task whose answers are
    rounded to a fixed number of decimals passes `places` (fincalc: 2). With
    `percent_ambiguity`, the same test against gold * 100 and gold / 100 (FinQA: "7.88%" vs 0.0788).
    A `Decimal` pred is taken as written: it also matches when the gold rounds to it at its own
    precision (`rounds_to`: "1.16" and "1.2" for 1.15663, not "1.15", and not "2" for 2.4); a float
    has no written precision and never matches that way.
    """
    written = pred if isinstance(pred, Decimal) else None
    try:
        pred, gold = float(pred), float(gold)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(pred) and math.isfinite(gold)):
        return False
    golds = (gold, gold * 100, gold / 100) if percent_ambiguity else (gold,)
    if any(_close(pred, g, rel_tol, places) for g in golds):
        return True
    return written is not None and rounds_to(written, gold, percent_ambiguity)
