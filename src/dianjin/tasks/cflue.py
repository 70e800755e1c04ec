"""CFLUE knowledge assessment: Chinese financial-exam multiple-choice questions (DianJin-R1's RL task).

Data: `aliyun/cflue` `data/knowledge/knowledge.json`, a JSON array of
`{"名称", "task", "question", "choices", "answer", "analysis"}` where `task` is 单项选择题, 多项选择题
or 判断题 (A=对, B=错), `choices` is a *Python dict literal string* (parsed with `ast.literal_eval`,
never `eval`) and `answer` holds the sorted gold letters. The file has no id, so each example gets
`cflue-<12 hex>` from a SHA-256 of its question and choices (a repeated question gets `-2`, `-3`, ...
in file order). A JSONL file of the same records also loads. Examples carry `id, task, question,
choices (dict), gold (sorted letters), qtype (the CFLUE 题型), exam (名称), analysis`.

Prompt: upstream never published its inference or distillation prompts, so ours is documented here:
CFLUE's own opening ("假设你是一位金融行业专家，请回答下列问题。"), one rule line per 题型 (`QTYPES`), the
options as `A. ...` lines, and the DianJin output contract (reason in `<think>`, answer in `<answer>`
with the letters in `\\boxed{}`).

Scoring: the predicted letter *set* must equal the gold set (order-insensitive). Where we deviate
from upstream (`eval.py` / `reward_score_cflue.py` keep every A-G character found anywhere in the
box, so `\\boxed{A. Bond}` reads "AB" and `\\boxed{Both A and C}` reads "ABC"), `extract` only counts
standalone option letters:

1. a short text that is nothing but letters, separators and answer words: `ABD`, `A、C`, `A和C`,
   `Both A and C`, `选项B`, `答案：B`, `the answer is B`, `\\text{B}`, full-width `Ａ`;
2. a short text equal to an option's text (`对` / `错误` for 判断题, or the exact option wording);
3. answer phrases in free text (`答案：A。解析：B选项错误` gives A; the last phrase that parses wins);
4. a short text opening with an option label, `A. 债券` (or `A. 甲；C. 丙`);
5. choosing verbs in free text, `故选B` (negated ones such as `不选B` are skipped).

When the example knows its choices only those keys count (a box naming a missing option is no
answer); otherwise A-G. Free text never gets a blind letter scan. Known limit: after an answer
phrase, comma-separated letters are read as one set, so `答案：A，B选项错误` gives AB.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import unicodedata
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from dianjin import answer as fmt
from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task, jsonl_records, read_text

ALL_LETTERS = "ABCDEFG"
# Whole-text rules (1, 2, 4) apply only to answer-sized texts: a box, or a terse answer block.
SHORT_CHARS = 200
# How far after an answer phrase the answer itself may sit.
SEGMENT_CHARS = 80
# Only the last few answer phrases are tried (bounds the work on degenerate text).
MAX_PHRASES = 32

# --- prompt ----------------------------------------------------------------------------------
class QType(NamedTuple):
    """How the prompt words one 题型."""

    kind: str  # what to call the question
    rule: str  # the rule line after the opening
    what: str  # what goes in the box
    example: str  # an example box content


QTYPES: dict[str, QType] = {
    "单项选择题": QType("单项选择题", "注意：本题只有一个正确选项。", "所选选项的字母", "A"),
    "多项选择题": QType("多项选择题", "注意：本题可能有一个或多个正确选项，请选出全部正确选项。", "全部正确选项的字母", "AC"),
    "判断题": QType("判断题", "注意：请判断题目中的说法是否正确，A 表示对，B 表示错。", "所选选项的字母", "A"),
}
# Used when an example does not say its 题型 (e.g. a bare `dianjin score` line).
DEFAULT_QTYPE = QType("选择题", "注意：本题可能有一个或多个正确选项，请选出全部正确选项。", "所选选项的字母", "AC")

PROMPT = (
    "假设你是一位金融行业专家，请回答下列{kind}。{rule}\n\n"
    "题目：{question}\n{options}\n\n"
    "请先在<think></think>中逐步推理，然后在<answer></answer>中给出最终答案，"
    "并把{what}写在\\boxed{{}}中（例如 \\boxed{{{example}}}）。"
)

# --- answer extraction -------------------------------------------------------------------------
_LATEX_WORDS = {"\\checkmark": "√", "\\times": "×"}
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")
_MARKUP = re.compile(r"[{}$*`#\\]")

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
# Between letters: punctuation, brackets, whitespace, 和/与/及/以及/and.
_SEPARATORS = re.compile(r"[\s,、;/&+()\[\]【】<>]+|以及|和|与|及|\band\b", re.IGNORECASE)
_LETTER_RUN = re.compile(r"[A-G]+")
# An option label opening a text: "A. 债券", "(B) 股票", "C、基金".
_LABEL_START = re.compile(r"\(?([A-G])(?:\)|\s*[.:、])")
_LABEL_NEXT = re.compile(r"[\s,;、]+\(?([A-G])(?:\)|\s*[.:、])")

# Letters at the start of the text after an answer phrase; atomic groups keep matching linear.
_SEGMENT_LETTERS = re.compile(
    r"(?>[\s(\[【<]*)(?:选项|options?\s+|both\s+)?(?>[\s(\[【<]*)"
    r"([A-G](?:(?>(?:[\s,、;/&+()\[\]【】<>]|以及|和|与|及|and\b)*)[A-G])*)(?![A-Za-z])"
)
_SEGMENT_TEXT = re.compile(r"(?:[^。.,;!?\n]|\.(?=\d)){1,40}")  # up to the clause end; "99.01" stays whole
# Answer phrases, strongest first; a tier's last match that parses wins. Only where a phrase ends
# matters, so "the final answer is" / "最终答案是" are matched from the keyword: a run of qualifiers
# ("final final ...") before it would make every start position rescan the run (quadratic).
_STRONG = re.compile(
    r"答案(?:应该|应当|应)?(?:是|为|选择|选)?\s*+[:=]?"
    r"|答\s*+:"
    r"|\b(?:answer|option|choice)s?\s*+(?:is|are|would\s+be|should\s+be|:|=)",
    re.IGNORECASE,
)
# "故选B", "应选B", "I choose B"; not after a negation or a modal ("不选B", "不应选B", "not choose B").
_CHOOSE = re.compile(
    r"(?<![不未没勿非别应能要该])(?:应该?|故|所以|因此|本题)?(?:选择|选)\s*[:=]?"
    r"|(?<!not\s)(?<!n't\s)(?<!never\s)\b(?:choose|select|pick)\b\s*:?",
    re.IGNORECASE,
)

# True/false synonyms: when a question's two options are a 对/错 pair, these words map to them.
TRUE_WORDS = frozenset("对 正确 是 √ ✓ ✔ 对的 正确的 true t yes correct right".split())
FALSE_WORDS = frozenset("错 错误 不对 不正确 否 × ✗ ✘ 错的 错误的 false f no incorrect wrong".split())


def normalize_text(text: str) -> str:
    """NFKC (full-width letters and punctuation to ASCII), LaTeX and markdown markup removed."""
    text = unicodedata.normalize("NFKC", text)
    for cmd, sym in _LATEX_WORDS.items():
        text = text.replace(cmd, sym)
    text = _LATEX_CMD.sub(" ", text)
    return _MARKUP.sub(" ", text).strip()


def _canon(text: str) -> str:
    """Option-text comparison key: normalised, case-folded, no whitespace or end punctuation."""
    return re.sub(r"\s+", "", normalize_text(text)).casefold().rstrip(".。!！")


def parse_choices(value: Any) -> dict[str, str]:
    """Choices as a dict: a dict as is, or a Python dict literal string via `ast.literal_eval`.

    Raises ValueError when the value is not a {letter: text} mapping.
    """
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
            raise ValueError(f"not a Python dict literal ({type(e).__name__})") from None
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a non-empty {letter: text} dict")
    for key, text in value.items():
        if not (isinstance(key, str) and len(key) == 1 and key in ALL_LETTERS):
            raise ValueError(f"option key {key!r} is not one of {ALL_LETTERS}")
        if not isinstance(text, str):
            raise ValueError(f"option {key} text is {type(text).__name__}, not str")
    return dict(sorted(value.items()))


class _Options:
    """What extraction needs to know about an example's options (read-only once built)."""

    def __init__(self, choices: Any):
        try:
            self.choices = parse_choices(choices)
        except ValueError:
            self.choices = {}
        self.valid = "".join(self.choices) or ALL_LETTERS
        by_text: dict[str, str | None] = {}
        for key, text in self.choices.items():
            canon = _canon(text)
            by_text[canon] = None if canon in by_text else key  # two options alike: ambiguous
            for words in (TRUE_WORDS, FALSE_WORDS):
                if canon in words:
                    for word in words:
                        by_text.setdefault(word, key)
        self.by_text = {t: k for t, k in by_text.items() if k and t}

    def letters(self, letters: str) -> str | None:
        """Sorted unique letters, or None if any is not an option."""
        if not letters or any(c not in self.valid for c in letters):
            return None
        return "".join(sorted(set(letters)))


@lru_cache(maxsize=4096)
def _options_of_literal(choices: str) -> _Options:
    """CFLUE's `choices` is a dict literal string: parsed once per question, not once per answer scored
    (an evaluation or a GRPO group scores the same question many times)."""
    return _Options(choices)


def _options(example: Example | None) -> _Options:
    choices = (example or {}).get("choices")
    return _options_of_literal(choices) if isinstance(choices, str) else _Options(choices)


def _strip_prefix(text: str) -> str:
    prev = None
    while prev != text:
        prev, text = text, _PREFIX.sub("", text, count=1)
    return text


def _only_letters(text: str) -> str | None:
    """Rule 1: the raw letters when the text is letters, separators and answer words only."""
    core = _SEPARATORS.sub(" ", _SUFFIX.sub("", _strip_prefix(text), count=1))
    tokens = core.split()
    if len(tokens) == 1 and len(tokens[0]) == 1 and tokens[0] in ALL_LETTERS.lower():
        tokens = [tokens[0].upper()]  # a lone lowercase letter: \boxed{b}
    if not tokens or not all(_LETTER_RUN.fullmatch(t) for t in tokens):
        return None
    return "".join(tokens)


def _option_text(text: str, opts: _Options) -> str | None:
    """Rule 2: the text is one option's wording (or a 对/错 synonym)."""
    return opts.by_text.get(_canon(_strip_prefix(text)))


def _labelled(text: str, opts: _Options) -> str | None:
    """Rule 4: "A. 债券" or "A. 甲；C. 丙": the labels of the options quoted."""
    if not _LABEL_START.match(text):
        text = _strip_prefix(text)
    m = _LABEL_START.match(text)
    if m is None:
        return None
    letters = m.group(1) + "".join(n.group(1) for n in _LABEL_NEXT.finditer(text, m.end()))
    return opts.letters(letters)


def _segment(text: str, opts: _Options) -> str | None:
    """The answer right after an answer phrase: letters, or an option's wording."""
    m = _SEGMENT_LETTERS.match(text)
    if m:
        return opts.letters(_SEPARATORS.sub("", m.group(1)))
    m = _SEGMENT_TEXT.match(text.lstrip())
    return opts.by_text.get(_canon(m.group())) if m else None


def _after_phrase(text: str, pattern: re.Pattern[str], opts: _Options) -> str | None:
    """Rules 3 and 5: the last phrase of `pattern` followed by a parseable answer."""
    for m in reversed(deque(pattern.finditer(text), maxlen=MAX_PHRASES)):
        found = _segment(text[m.end() : m.end() + SEGMENT_CHARS], opts)
        if found:
            return found
    return None


def extract_letters(text: str, example: Example | None = None) -> str | None:
    """Sorted option letters chosen by a piece of answer text; None when it names none."""
    opts = _options(example)
    text = normalize_text(text[-fmt.TAIL_CHARS :])
    if not text:
        return None
    short = len(text) <= SHORT_CHARS
    if short:
        letters = _only_letters(text)
        found = (letters and opts.letters(letters)) or _option_text(text, opts)
        if found or letters:  # letters only: nothing else to find ("E" when the options are A-D)
            return found
    found = _after_phrase(text, _STRONG, opts)
    if found is None and short:
        found = _labelled(text, opts)
    return found or _after_phrase(text, _CHOOSE, opts)


def gold_letters(gold: Any) -> str | None:
    """The gold as sorted letters ("ACD", also "A,C,D" or ["A", "C"]); None when unparseable."""
    if isinstance(gold, (list, tuple)):
        gold = "".join(str(g) for g in gold)
    if not isinstance(gold, str):
        return None
    letters = _SEPARATORS.sub("", unicodedata.normalize("NFKC", gold)).upper()
    if not letters or not _LETTER_RUN.fullmatch(letters):
        return None
    return "".join(sorted(set(letters)))


# --- loading ------------------------------------------------------------------------------------
def _records(path: Path) -> list[tuple[int, Any]]:
    """(index, record) pairs: a JSON array (0-based record index) or JSONL (1-based line number)."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, None, f"invalid JSON: {e.msg}") from None
        return list(enumerate(data))
    return list(jsonl_records(path, text))


def make_id(question: str, choices: dict[str, str]) -> str:
    """Stable id from the question and its choices."""
    key = question.strip() + "\n" + json.dumps(choices, ensure_ascii=False, sort_keys=True)
    return "cflue-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def _example(path: Path, where: int, rec: Any) -> Example:
    def need(field: str, types: tuple[type, ...] = (str,), optional: bool = False) -> Any:
        value = rec.get(field)
        if optional and (value is None or isinstance(value, str)):
            return value
        if not isinstance(value, types) or (isinstance(value, str) and not value.strip()):
            want = " or ".join(t.__name__ for t in types) + ("" if optional else ", non-empty")
            got = "nothing" if field not in rec else f"{type(value).__name__} {str(value)[:40]!r}"
            raise DataError(path, where, field, f"expected {want}, got {got}")
        return value

    if not isinstance(rec, dict):
        raise DataError(path, where, None, f"expected a JSON object, got {type(rec).__name__}")
    qtype = need("task")
    if qtype not in QTYPES:
        raise DataError(path, where, "task", f"unknown 题型 {qtype!r}; expected one of {', '.join(QTYPES)}")
    question = need("question")
    try:
        choices = parse_choices(need("choices", (str, dict)))
    except ValueError as e:
        raise DataError(path, where, "choices", str(e)) from None
    answer = need("answer").strip()
    if not _LETTER_RUN.fullmatch(answer) or any(c not in choices for c in answer):
        raise DataError(path, where, "answer", f"{answer!r} is not letters among the choices {''.join(choices)}")
    return {
        "id": make_id(question, choices),
        "task": CflueTask.name,
        "question": question,
        "choices": choices,
        "gold": "".join(sorted(set(answer))),
        "qtype": qtype,
        "exam": need("名称", optional=True),
        "analysis": need("analysis", optional=True),
    }


@register("cflue_mcq", "cflue_mcq_r1", "dianjin/cflue", "cflue_knowledge", "aliyun/cflue")
class CflueTask(Task):
    """CFLUE knowledge MCQ: the gold is a set of option letters in `\\boxed{}`."""

    name = "cflue"
    boxed = True

    def load(self, path: str) -> list[Example]:
        """Read knowledge.json (or JSONL); a DataError's `line` is the 0-based record index of a
        JSON array, or the 1-based line number of a JSONL file."""
        path = Path(path)
        examples: list[Example] = []
        seen: dict[str, int] = {}
        for where, rec in _records(path):
            ex = _example(path, where, rec)
            seen[ex["id"]] = n = seen.get(ex["id"], 0) + 1
            if n > 1:  # the same question twice: keep both, ids stay stable in file order
                ex["id"] = f"{ex['id']}-{n}"
            examples.append(ex)
        return examples

    def messages(self, example: Example) -> Messages:
        qtype = QTYPES.get(example.get("qtype") or "", DEFAULT_QTYPE)
        try:
            choices = parse_choices(example.get("choices"))
        except ValueError:
            choices = {}
        options = "\n".join(f"{k}. {v}" for k, v in choices.items())
        content = PROMPT.format(question=example["question"].strip(), options=options, **qtype._asdict())
        return [{"role": "user", "content": content}]

    def extract(self, text: str, example: Example) -> str | None:
        return extract_letters(text, example)

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        gold = gold_letters(example.get("gold"))
        if gold is None:
            return None, f"unparseable gold {example.get('gold')!r}"
        got = gold_letters(pred)
        if got == gold:
            return True, f"letters {got} match the gold"
        return False, f"predicted {got or pred!r}, gold {gold}"

    def reference(self, example: Example) -> str:
        return gold_letters(example["gold"]) or str(example["gold"])
