"""GPQA-Diamond: 198 graduate-level four-option science questions, scored by option letter.

Data: `idavidrein/gpqa` `dataset.zip` → `gpqa_diamond.csv` (78 columns; its authors ask that examples
not be posted in plain text, so the repo's fixture is invented). We read `Question`, `Correct Answer`,
`Incorrect Answer 1..3` and `Record ID` (plus `High-level domain` and `Subdomain` when present),
with the csv module (quoted fields span lines). Whitespace around every field is stripped, since
answers in the real file carry trailing spaces and newlines.

Options: the file has no letter column (the answer is always `Correct Answer`), so the options are
shuffled here, deterministically per question and repeat. For each question the 24 permutations of
four options are shuffled once with a seed from sha256(Record ID); repeat r uses permutation r (mod
24). So repeats 0..k-1 of a question get k different orders for any k <= 24, and repeat r's order does
not depend on k. simple-evals does k=4 repeats from one global `random.Random(0)`; EvalScope (2025-04,
the version DianJin cites) used an unseeded shuffle, so its runs cannot be reproduced.

    get_task("gpqa").load(path)        # k=1: one example per question, id "recXXXX#0"
    get_task("gpqa").load(path, k=4)   # four permutations per question, repeat-major order
    expand(examples, k=4)              # the same from examples already loaded

Examples: `id` f"{record_id}#{r}", `question` (the bare question), `choices` {"A".."D": text},
`gold` (the correct letter), `record_id`, `repeat`, `answers` (the four texts in file order, correct
first, which `expand` re-shuffles), `domain`, `subdomain`. Report mean ± std over repeats.

Prompt: DianJin-R1 evaluates GPQA "through EvalScope" and never published its prompts. Ours follows
EvalScope's (`What is the correct answer to this question: ...`, options as `(A) ...`, "reason step by
step ... within \\boxed{}") in the `<think>/<answer>` format (see `PROMPT`).

Extraction: the option-letter reader every letter task shares (`dianjin.tasks.text.option_letters`,
one letter, options A-D, with the last-"(C)" fallback). EvalScope took the last standalone A-D token
anywhere, which reads the article "A" or a letter in the reasoning as the answer; ours reads
1. the last `\\boxed{}`: `\\boxed{C}`, `\\boxed{\\text{C}}`, `\\boxed{(C)}`, `\\boxed{c}`, full-width `Ｃ`,
   `\\boxed{C) text}`, or the text of exactly one option (`\\boxed{10^-8 eV}`);
2. the same rules on the whole text when it is short (`text.SHORT_CHARS`: an answer block holding "C");
3. the last "answer/option/choice is X", "Answer: X", "答案是 X" or "which is option X" (also "The
   correct answer is (C)"), with an UPPERCASE letter that stands alone: followed by the end of the
   line, punctuation, " (", " -" or "because/since/as/which/is/are", so "Answer: A good approach..."
   does not count; then "I choose X";
4. the last standalone "(C)".
Outside a box or a bare answer, lowercase letters never count. The brief listed "(C)" before
"the answer is C"; we try "answer"-anchored phrases first, since "(A)" also names options in prose.
Checking is letter equality.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import random

from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task
from dianjin.tasks.text import option_letters

LETTERS = "ABCD"
ANSWER_COLUMNS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
REQUIRED_COLUMNS = ("Question", *ANSWER_COLUMNS, "Record ID")
OPTIONAL_COLUMNS = {"domain": "High-level domain", "subdomain": "Subdomain"}

PROMPT = (
    "What is the correct answer to this question: {question}\n\n"
    "Choices:\n(A) {A}\n(B) {B}\n(C) {C}\n(D) {D}\n\n"
    "Please reason step by step inside <think></think>, then give your final answer inside "
    "<answer></answer> as the letter of the correct choice (A, B, C or D) within \\boxed{{}}."
)

_PERMUTATIONS = tuple(itertools.permutations(range(4)))  # 24 orders; perm[i] = answers index shown as letter i


def permutation(record_id: str, repeat: int) -> tuple[int, ...]:
    """Order of the four answers (file order, correct first) shown as A-D in this repeat."""
    seed = int.from_bytes(hashlib.sha256(record_id.encode("utf-8")).digest()[:8], "big")
    perms = list(_PERMUTATIONS)
    random.Random(seed).shuffle(perms)
    return perms[repeat % len(perms)]


def shuffled(question: Example, repeat: int) -> Example:
    """Repeat `repeat` of a question: its options in this repeat's order and the matching gold letter."""
    perm = permutation(question["record_id"], repeat)
    answers = question["answers"]
    ex = {k: v for k, v in question.items() if k not in ("id", "choices", "gold", "repeat")}
    ex.update(
        id=f"{question['record_id']}#{repeat}",
        repeat=repeat,
        choices={LETTERS[i]: answers[j] for i, j in enumerate(perm)},
        gold=LETTERS[perm.index(0)],
    )
    return ex


def expand(examples: list[Example], k: int) -> list[Example]:
    """k repeats of each question in `examples` (as `load` returns them: deduplicated by record_id,
    re-shuffled from `answers`), in repeat-major order: all questions' repeat 0, then repeat 1, ..."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    questions: dict[str, Example] = {}
    for ex in examples:
        questions.setdefault(ex["record_id"], ex)
    return [shuffled(q, r) for r in range(k) for q in questions.values()]


@register("gpqa_diamond", "gpqa-diamond", "idavidrein/gpqa", "ai-modelscope/gpqa_diamond")
class GPQA(Task):
    name = "gpqa"
    boxed = True

    def load(self, path: str, k: int = 1) -> list[Example]:
        """Read a GPQA CSV; `k` repeats per question with different option orders (see `expand`)."""
        questions: list[Example] = []
        seen: dict[str, int] = {}
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            for col in REQUIRED_COLUMNS:
                if col not in header:
                    raise DataError(path, 1, col, "missing column")
            end = reader.line_num
            for row in reader:
                line, end = end + 1, reader.line_num  # a record's first line: quoted fields span lines
                values = {}
                for col in REQUIRED_COLUMNS:
                    value = (row.get(col) or "").strip()
                    if not value:
                        raise DataError(path, line, col, "empty")
                    values[col] = value
                rid = values["Record ID"]
                if rid in seen:
                    raise DataError(path, line, "Record ID", f"duplicate {rid!r} (first on line {seen[rid]})")
                seen[rid] = line
                q: Example = {
                    "task": self.name,
                    "record_id": rid,
                    "question": values["Question"],
                    "answers": [values[c] for c in ANSWER_COLUMNS],
                }
                q.update({key: (row.get(col) or "").strip() for key, col in OPTIONAL_COLUMNS.items() if col in header})
                questions.append(q)
        return expand(questions, k)

    def messages(self, example: Example) -> Messages:
        content = PROMPT.format(question=example["question"], **example["choices"])
        return [{"role": "user", "content": content}]

    def extract(self, text: str, example: Example) -> str | None:
        return option_letters(text, LETTERS, choices=example.get("choices"), parens=True)

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        gold = str(example.get("gold", "")).strip().upper()
        if len(gold) != 1 or gold not in LETTERS:
            return None, f"gold {example.get('gold')!r} is not a letter A-D"
        pred = pred.strip().upper()
        return pred == gold, f"predicted {pred}, gold {gold}"
