"""Reading answers out of model text: one LaTeX unwrap and one option-letter reader for every task.

Every task scores through `Task.score` (the RL reward, the data check and the evaluation), and the
option-letter tasks (CFLUE, GPQA, FinCalc's MCQ form) and the number readers (`dianjin.tasks.numeric`,
FinQA's yes/no) read answers with these functions, so "\\text{B}", "答案：B" or "Both A and C" mean
the same everywhere.

`unwrap_latex` replaces a text wrapper by its content, spaced:

    unwrap_latex("\\text{B}")                 -> " B "
    unwrap_latex("\\textbf{\\text{12}}\\%")    -> "  12  \\%"     (two levels of nesting)
    unwrap_latex("10^{-8}\\mathrm{eV}")        -> "10^{-8} eV "

`plain` is what the letter reader works on: NFKC (full-width letters and punctuation to ASCII),
text wrappers unwrapped, `\\checkmark`/`\\times` as √/×, other LaTeX commands and the markup
characters `{}$*`#\\` dropped.

`option_letters(text, letters, *, choices, multi, value, parens)` reads the chosen option letters,
sorted ("AC"), or None. `letters` is the task's letter set (A-G for CFLUE, A-D otherwise); with
`choices` only the letters of its options count (a letter naming a missing option is no answer).
Rules, first hit wins; the last `\\boxed{}` in the text is tried with the bare-answer rules first:

1. bare answer (at most SHORT_CHARS, after markup is removed): nothing but letters, separators
   and answer words: "ABD", "A、C", "A和C", "Both A and C", "选项B", "答案：B", "the answer is (C).",
   "A and C are correct"; a lone lowercase letter ("b", "**(b)**") counts, lowercase after answer
   words ("the answer is c") does not. A text of letters that are not all options is no answer
   ("E" for A-D, "CAFE"), and nothing else is tried;
2. bare answer equal to one option's text ("股票", "10^-8 eV" for "$10^{-8}$ eV"), or a 对/错 word
   for a 对/错 pair of options ("正确", "True", "F" when F is not an option);
3. answer phrases in free text, the last one followed by a parseable answer: "答案：A。解析：B选项错误"
   gives A, "The correct answer is B because ..." gives B, "which is option B" / "对应选项 B" give B,
   "答案：基金" gives the option worded 基金. The letter must stand alone: "Answer: A good approach"
   is the article A, so no answer;
4. bare answer opening with an option label: "A. 债券", "(B) 股票", "C) text", "A. 甲；C. 丙";
5. choosing verbs in free text: "故选B", "I choose D"; negated ones ("不选B", "not choose B") skipped;
6. with `value` (a number reader): a text of at most VALUE_CHARS whose number equals exactly
   one option's ("12.34" or "答案为12.34" for the option "12.34%");
7. with `parens`: the last standalone "(C)" in free text (GPQA, whose prompt labels options "(A)").

With `multi` the answer is a set ("Both A and C" -> "AC"); without it a text naming several letters
is no answer ("A, C" bare, or "A and C" after an answer phrase) and an answer phrase reads one letter.
Uppercase letters only, outside a bare answer. Every scan is linear: runs of spaces are matched
possessively, answer phrases are anchored at their keyword, at most MAX_PHRASES phrases are tried,
and only the last `dianjin.answer.TAIL_CHARS` characters are read.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from dianjin import answer as fmt

__all__ = [
    "FALSE_WORDS",
    "SEPARATORS",
    "SHORT_CHARS",
    "TRUE_WORDS",
    "VALUE_CHARS",
    "option_letters",
    "plain",
    "unwrap_latex",
]

# Bare-answer rules (1, 2, 4) apply only to answer-sized texts: a box, or a terse answer block.
SHORT_CHARS = 200
# Rule 6 (an option's number) applies only to a text this short: a bare number, not a sentence of them.
VALUE_CHARS = 40
# Only the last few answer phrases are tried (bounds the work on degenerate text).
MAX_PHRASES = 32

# --- LaTeX --------------------------------------------------------------------------------------
_WRAPPERS = (
    "text",
    "textbf",
    "textit",
    "textrm",
    "textsf",
    "texttt",
    "textup",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathtt",
    "operatorname",
    "mbox",
    "boldsymbol",
)
_WRAPPER = re.compile(r"\\(?:" + "|".join(sorted(_WRAPPERS, key=len, reverse=True)) + r")\s*\{([^{}]*)\}")
_SYMBOLS = {"\\checkmark": "√", "\\times": "×"}
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")
_MARKUP = re.compile(r"[{}$*`#\\]")


def unwrap_latex(text: str) -> str:
    """`\\text{..}`, `\\textbf{..}`, `\\mathrm{..}`, `\\operatorname{..}` ... replaced by their content
    with a space either side ("\\text{B}" -> " B "); two levels of nesting ("\\textbf{\\text{B}}")."""
    if "\\" not in text:
        return text
    text, n = _WRAPPER.subn(r" \1 ", text)
    return _WRAPPER.sub(r" \1 ", text) if n else text


def plain(text: str) -> str:
    """NFKC, LaTeX wrappers unwrapped, other LaTeX commands and markdown/maths markup removed, stripped."""
    text = unwrap_latex(unicodedata.normalize("NFKC", text))
    for cmd, sym in _SYMBOLS.items():
        text = text.replace(cmd, sym)
    return _MARKUP.sub(" ", _LATEX_CMD.sub(" ", text)).strip()


# --- the patterns -------------------------------------------------------------------------------
# Between letters: punctuation, brackets, whitespace, 和/与/及/以及/and.
SEPARATORS = re.compile(r"[\s,、;/&+()\[\]【】<>]+|以及|和|与|及|\band\b", re.IGNORECASE)
_SEP = r"(?:[\s,、;/&+()\[\]【】<>]|以及|和|与|及|(?i:and)\b)"
_LETTER_RUN = re.compile(r"[A-Z]+")
# Leading answer words, stripped repeatedly: 答案是 / 正确答案为 / 选项 / 选 / the answer is / both ...
_PREFIX = re.compile(
    r"^(?:(?:最终|正确|本题|最后)?的?答案(?:应该|应当|应)?(?:是|为|选择|选)?|答|(?:应该?|故|所以|因此|本题)?(?:选项|选择|选)"
    r"|(?:the\s+)?(?:final\s+|correct\s+|right\s+)*(?:answer|option|choice)s?(?:\s+(?:is|are|would\s+be|should\s+be))?"
    r"|both|all\s+of|only|options?)\s*[:=]?\s*",
    re.IGNORECASE,
)
# Trailing approval words and punctuation: A和C都正确 / B选项 / A and C are correct.
_SUFFIX = re.compile(
    r"\s*(?:(?:选项|项|都|均|皆|全|是|为|说法)*(?:正确的?|对的?|符合题意)?"
    r"|(?:(?:are|is)\s+)?(?:both\s+|all\s+)?(?:correct|right|true)?)\s*[.。!！]*$",
    re.IGNORECASE,
)
# An option label opening a bare answer ("A. 债券", "(B) 股票", "C、基金", "答案：B. 股票"), and the next ones.
_LABEL_START = re.compile(
    r"(?:(?:最终|正确)?答案\s*+[:是为]?\s*+|选项\s*+"
    r"|(?i:(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|option|choice)\b(?:\s+is\b)?)\s*+:?\s*+)?"
    r"\(?([A-Z])(?:\)|\s*+[.:、])"
)
_LABEL_NEXT = re.compile(r"[\s,;、]+\(?([A-Z])(?:\)|\s*+[.:、])")
# What may follow a letter that stands alone after an answer phrase: the end of the line, punctuation,
# a non-ASCII character other than 和/与/及/或 ("B选项", "B。"), or a space and "(", "-", because, is ...
# ("Answer: A good approach" is the article A). Runs of spaces are matched possessively (`*+`).
_STANDS_ALONE = (
    r"(?=[^\S\n]*+(?:$|[\n.,;:!?)\]}>'\"]|(?![和与及或])[^\x00-\x7f])"
    r"|[^\S\n]++(?:[-(]|(?i:because|since|as|for|which|is|are)\b))"
)
_LEAD = r"[\s(\[【<'\"]*+(?:选项|(?i:options?|both)\s++)?[\s(\[【<'\"]*+"
# The letter (one, or a set with `multi`) right after an answer phrase.
_SEGMENT_ONE = re.compile(_LEAD + r"([A-Z])" + _STANDS_ALONE)
_SEGMENT_SET = re.compile(_LEAD + rf"([A-Z](?:{_SEP}*+[A-Z])*+)" + _STANDS_ALONE)
_SEGMENT_TEXT = re.compile(r"\s*+((?:[^。.,;!?\n]|\.(?=\d)){1,40})")  # up to the clause end; "99.01" stays whole
# Answer phrases; a phrase's last match that parses wins. Only where a phrase ends matters, so "the final
# answer is" / "最终答案是" are matched from the keyword: a run of qualifiers ("final final ...") before
# it would make every start position rescan the run (quadratic).
_STRONG = re.compile(
    r"答案(?:应该|应当|应)?(?:是|为|选择|选)?\s*+[:=]?"
    r"|答\s*+:"
    r"|(?<!不)(?:对应|即|是|为)\s*+选项|选项\s*+(?:是|为|[:=])"
    r"|\b(?:answer|option|choice)s?\s*+(?:(?:is|are|would\s+be|should\s+be)\b\s*+[:=]?|[:=])"
    r"|\b(?:is|be)\s++(?:option|choice)\b",
    re.IGNORECASE,
)
# "故选B", "应选B", "I choose B"; not after a negation or a modal ("不选B", "不应选B", "not choose B").
_CHOOSE = re.compile(
    r"(?<![不未没勿非别应能要该])(?:应该?|故|所以|因此|本题)?(?:选择|选)\s*+[:=]?"
    r"|(?<!not\s)(?<!n't\s)(?<!never\s)\b(?:choose|select|pick)\b\s*+:?",
    re.IGNORECASE,
)
_PAREN = re.compile(r"\(([A-Z])\)")

# True/false synonyms: when two options are a 对/错 pair, these words name them.
TRUE_WORDS = frozenset("对 正确 是 √ ✓ ✔ 对的 正确的 true t yes correct right".split())
FALSE_WORDS = frozenset("错 错误 不对 不正确 否 × ✗ ✘ 错的 错误的 false f no incorrect wrong".split())


# --- the options --------------------------------------------------------------------------------
def _canon(text: str) -> str:
    """Option-text comparison key: plain, case-folded, no whitespace or end punctuation."""
    return re.sub(r"\s+", "", plain(text)).casefold().rstrip(".。!！")


class _Options(NamedTuple):
    """What reading needs to know about the options (built once per option set, see `_options`)."""

    letters: str  # the task's letter set
    valid: str  # the letters that name an option
    by_text: dict[str, str]  # canonical option text (and 对/错 synonyms) -> letter
    values: tuple[tuple[str, float], ...]  # (letter, number) for `value`
    value: Callable[[str], float | None] | None

    def pick(self, letters: str | None, multi: bool) -> str | None:
        """Sorted unique letters; None if any is not an option, or several without `multi`."""
        if not letters or any(c not in self.valid for c in letters):
            return None
        chosen = "".join(sorted(set(letters)))
        return chosen if multi or len(chosen) == 1 else None


@lru_cache(maxsize=4096)
def _options(letters: str, items: tuple[tuple[str, str], ...], value: Callable[[str], float | None] | None) -> _Options:
    """An evaluation or a GRPO group reads answers to the same question many times: built once."""
    items = tuple((k, t) for k, t in items if k in letters)
    valid = "".join(k for k, _ in items) if items else letters
    by_text: dict[str, str | None] = {}
    for key, text in items:
        canon = _canon(text)
        by_text[canon] = None if canon in by_text else key  # two options alike: ambiguous
        for words in (TRUE_WORDS, FALSE_WORDS):
            if canon in words:
                for word in words:
                    by_text.setdefault(word, key)
    values: list[tuple[str, float]] = []
    for key, text in items:
        v = value(text) if value else None
        if v is not None and math.isfinite(v):
            values.append((key, v))
    return _Options(letters, valid, {t: k for t, k in by_text.items() if k and t}, tuple(values), value)


# --- the rules ----------------------------------------------------------------------------------
def _strip_prefix(text: str) -> str:
    prev = None
    while prev != text:
        prev, text = text, _PREFIX.sub("", text, count=1)
    return text


def _only_letters(text: str) -> str | None:
    """Rule 1: the letters when the text is letters, separators and answer words only."""
    bare = SEPARATORS.sub(" ", _SUFFIX.sub("", text, count=1)).split()
    if len(bare) == 1 and len(bare[0]) == 1 and "a" <= bare[0] <= "z":
        return bare[0].upper()  # a lone lowercase letter: \boxed{b}, **(b)**
    tokens = SEPARATORS.sub(" ", _SUFFIX.sub("", _strip_prefix(text), count=1)).split()
    if not tokens or not all(_LETTER_RUN.fullmatch(t) for t in tokens):
        return None
    return "".join(tokens)


def _labelled(text: str, opts: _Options, multi: bool) -> str | None:
    """Rule 4: "A. 债券" or "A. 甲；C. 丙": the labels of the options quoted."""
    m = _LABEL_START.match(text)
    if m is None:
        return None
    nxt = "".join(c for n in _LABEL_NEXT.finditer(text, m.end()) if (c := n.group(1)) in opts.letters)
    return opts.pick(m.group(1) + nxt, multi)


def _segment(text: str, pos: int, opts: _Options, multi: bool) -> str | None:
    """The answer right after an answer phrase ending at `pos`: letters, or an option's wording."""
    m = (_SEGMENT_SET if multi else _SEGMENT_ONE).match(text, pos)
    if m:
        return opts.pick(SEPARATORS.sub("", m.group(1)), multi)
    m = _SEGMENT_TEXT.match(text, pos)
    return opts.by_text.get(_canon(m.group(1))) if m else None


def _after_phrase(text: str, pattern: re.Pattern[str], opts: _Options, multi: bool) -> str | None:
    """Rules 3 and 5: the last phrase of `pattern` followed by a parseable answer."""
    for m in reversed(deque(pattern.finditer(text), maxlen=MAX_PHRASES)):
        found = _segment(text, m.end(), opts, multi)
        if found:
            return found
    return None


def _by_value(raw: str, opts: _Options) -> str | None:
    """Rule 6: the one option whose number the text's number equals."""
    got = opts.value(raw) if opts.value else None
    hits = [k for k, v in opts.values if got is not None and abs(v - got) < 1e-9]
    return hits[0] if len(hits) == 1 else None


def _last_paren(text: str, opts: _Options, multi: bool) -> str | None:
    """Rule 7: the last standalone "(C)" naming an option."""
    for m in reversed(deque(_PAREN.finditer(text), maxlen=MAX_PHRASES)):
        found = opts.pick(m.group(1), multi)
        if found:
            return found
    return None


def _read(raw: str, text: str, opts: _Options, multi: bool, free: bool, parens: bool) -> str | None:
    """The rules on one text (`text` is `plain(raw)`); `free`: also the free-text rules 3, 5 and 7."""
    short = len(text) <= SHORT_CHARS
    if short:
        letters = _only_letters(text)
        found = opts.pick(letters, multi) or opts.by_text.get(_canon(_strip_prefix(text)))
        if found or letters:  # letters only: nothing else to find ("E" when the options are A-D)
            return found
    found = _after_phrase(text, _STRONG, opts, multi) if free else None
    if found is None and short:
        found = _labelled(text, opts, multi)
    if found is None and free:
        found = _after_phrase(text, _CHOOSE, opts, multi)
    if found is None and len(text) <= VALUE_CHARS and opts.values:
        found = _by_value(raw, opts)
    if found is None and free and parens:
        found = _last_paren(text, opts, multi)
    return found


def option_letters(
    text: str,
    letters: str = "ABCD",
    *,
    choices: Mapping[str, Any] | None = None,
    multi: bool = False,
    value: Callable[[str], float | None] | None = None,
    parens: bool = False,
) -> str | None:
    """The option letters a piece of answer text chooses, sorted ("AC"); None when it names none.

    letters: the task's option letters ("ABCDEFG" for CFLUE).
    choices: {letter: option text}; only its letters count, and an answer may quote an option's text.
    multi: the answer is a set of letters (CFLUE); otherwise exactly one letter.
    value: a number reader (`text -> float | None`): a bare number equal to one option's names it.
    parens: fall back to the last standalone "(C)" in free text (GPQA's options are labelled "(A)").
    See the module docstring for the rules.
    """
    if not text:
        return None
    items = tuple((str(k), str(t)) for k, t in choices.items()) if isinstance(choices, Mapping) else ()
    opts = _options(letters, items, value)
    text = text[-fmt.TAIL_CHARS :]
    box = fmt.last_boxed(text)
    if box:
        found = _read(box, plain(box), opts, multi, free=False, parens=False)
        if found:
            return found
    clean = plain(text)
    return _read(text, clean, opts, multi, free=True, parens=parens) if clean else None
