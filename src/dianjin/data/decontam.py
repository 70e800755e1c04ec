"""Decontamination: drop training records that overlap an evaluation set, by n-grams.

    kept_sft, kept_rl, report = decontam.run(sft_rows, rl_rows, eval_sets, n=8)

What is compared
- A training record's text is its user content: the `user` messages of an SFT row (`messages`) or
  an RL row (`prompt`), else its `question`. System prompts and the assistant target are not
  compared (the teacher's reasoning may legitimately quote a textbook sentence).
- An evaluation item's texts are its `question`, each option text (`choices`) and its `context`
  (FinQA's report excerpt), each on its own: an n-gram never spans two of them, since a prompt
  puts option labels ("A.") between them. Not the rendered prompt: the instruction template is
  shared by every item of a task and would match everything.

Tokenisation (`tokens`): NFKC, case-folded; every CJK character (ideographs, kana, hangul) is one
token and every run of other letters/digits is one token (an English word, or a number split at
its punctuation: "12.5%" gives "12", "5"); whitespace and punctuation are dropped. So an n-gram is
n words of English, n characters of Chinese, or a mix across a code-switch. n=8 follows open-r1 /
s1 (8 words); for Chinese it means 8 characters, about 4 words.

When a record overlaps an item (where we deviate from open-r1, which drops on any shared n-gram):
when the record's n-grams cover at least `min_coverage` (default 0.5) of the item's distinct
n-grams. Eight Chinese characters are short: exam stock phrases ("下列说法正确的是", "根据中华人民共和国")
and 10-K boilerplate ("notes to the consolidated financial statements") recur across unrelated
items. Measured on CFLUE's dev split (one half as training prompts, the other as evaluation) any
shared 8-gram flags 34% of the questions, coverage >= 0.5 flags 1.6% (a shared case passage, or the
same question restated); each half against itself: 1927 of 1932 found (the other 5 are too short).
FinQA train_100 against test_100: 61% vs 5% (same company, adjacent years, same table).
`min_coverage=0` restores "any shared n-gram". Also, an n-gram found in more than `max_eval_df`
items of one evaluation set is boilerplate and ignored (default 2% of the set, at least 5 items).
Every match in the report carries the shared count and the coverage.

Provenance: a record whose `source_id` is an evaluation item's id or `source_id` (or whose id is
an item's `source_id`) overlaps it too: a CFLUE_OE question converted from an MCQ that is in the
evaluation set is contaminated even when the rewrite shares few n-grams.

Items with no n-gram (every text shorter than n tokens, or only boilerplate, e.g. "货币的职能有（）。"
with two-character options) cannot be matched; the report counts them as `short_items`.

Speed: one pass over the evaluation items builds an inverted index (a dict from each n-gram, a
tuple of tokens hashed by Python, to the items holding it); each training record then costs one
set intersection done in C. 10k records against 1k items take about a second.

Evaluation sets (`eval_sets`, a list) may be given as
- a `{task, path}` mapping (or any object with `.task` and `.path`, e.g. a SourceSpec): loaded with
  `dianjin.tasks.get_task(task).load(path)`;
- a path: the first task in `GUESS_ORDER` whose loader accepts the file (pass `{task, path}` to
  be explicit);
- a list of example dicts (`id`, `question`, optional `choices`, `context`, `source_id`, `task`).

The report: `n`, `min_coverage`, `max_eval_df`, `eval_sets` (name, task, path, items,
short_items, boilerplate_ngrams), `checked` / `dropped` counts per pool, and `overlaps`: one entry
per dropped row (`pool`, `id`, `task`, `n_matches`, `matches`: up to 20 of `{eval_set, eval_id,
via: "ngram" | "source_id", ngram, shared, coverage}`).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dianjin.errors import DataError
from dianjin.tasks import get_task
from dianjin.tasks.base import Example

log = logging.getLogger("dianjin.data")

# CJK ideographs (BMP, extension A, compatibility, extensions B+), kana and hangul syllables.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN = re.compile(f"[{CJK}]|[^\\W_{CJK}]+")
# Loaders tried, in order, for an evaluation file given without its task.
GUESS_ORDER = ("finqa", "cflue", "gpqa", "math500", "ccc", "fincalc", "cflue_oe")
# At most this many matches are listed per training record (the count is always kept).
MAX_MATCHES_LISTED = 20

Ngram = tuple[str, ...]


def tokens(text: str) -> list[str]:
    """Decontamination tokens: CJK characters and other letter/digit runs (see the module docstring)."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def ngrams(toks: list[str], n: int) -> Iterator[Ngram]:
    """The n-grams of a token list, in order (none when it is shorter than n)."""
    return zip(*(toks[i:] for i in range(n)))


def ngram_text(gram: Ngram) -> str:
    """An n-gram for people: CJK tokens joined without spaces, words with one."""
    out = ""
    for tok in gram:
        if out and not (_is_cjk(tok) and _is_cjk(out[-1])):
            out += " "
        out += tok
    return out


def _is_cjk(ch: str) -> bool:
    return bool(re.fullmatch(f"[{CJK}]", ch[0]))


# --- evaluation sets --------------------------------------------------------------------------------
@dataclass
class EvalSet:
    """One loaded evaluation set."""

    name: str
    examples: list[Example]
    task: str | None = None
    path: str | None = None
    short_items: int = 0
    boilerplate: int = 0  # n-grams ignored as too common in this set


def _load_guess(path: Path) -> tuple[str, list[Example]]:
    errors = []
    for name in GUESS_ORDER:
        try:
            examples = get_task(name).load(str(path))
        except (DataError, ValueError, KeyError, TypeError, AttributeError, OSError, UnicodeDecodeError) as e:
            errors.append(f"{name}: {e}")
            continue
        if examples:
            return name, examples
        errors.append(f"{name}: no examples")
    raise DataError(
        path,
        None,
        None,
        "no task loader accepts this evaluation file; give it as {task, path}. Tried: "
        + " | ".join(e[:160] for e in errors),
    )


def load_eval_set(spec: Any, i: int = 0) -> EvalSet:
    """An EvalSet from a path, a `{task, path}` mapping / object, or a list of example dicts."""
    where = f"eval_sets[{i}]"
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.exists():
            raise DataError(path, None, None, f"{where}: evaluation file not found")
        task, examples = _load_guess(path)
        return EvalSet(f"{task}:{path.name}", examples, task, str(path))
    if isinstance(spec, Mapping) or (hasattr(spec, "task") and hasattr(spec, "path")):
        get = spec.get if isinstance(spec, Mapping) else lambda k: getattr(spec, k, None)
        spec_task, spec_path = get("task"), get("path")
        if not spec_task or not spec_path:
            raise DataError(
                where, None, "task" if not spec_task else "path", "an evaluation set spec needs task and path"
            )
        try:
            examples = get_task(str(spec_task)).load(str(spec_path))
        except KeyError as e:
            raise DataError(where, None, "task", str(e)) from None
        return EvalSet(
            str(get("name") or f"{spec_task}:{Path(spec_path).name}"), examples, str(spec_task), str(spec_path)
        )
    if isinstance(spec, list):
        for j, ex in enumerate(spec):
            if not isinstance(ex, Mapping):
                raise DataError(where, j, None, f"expected an example dict, got {type(ex).__name__}")
        tasks = sorted({str(ex.get("task")) for ex in spec if ex.get("task")})
        name = f"{'+'.join(tasks) or 'examples'}:{where}"
        return EvalSet(name, list(spec), "+".join(tasks) or None)
    raise DataError(
        where, None, None, f"expected a path, a {{task, path}} spec or a list of examples, got {type(spec).__name__}"
    )


def eval_segments(ex: Mapping[str, Any]) -> list[str]:
    """The texts of an evaluation item compared, each on its own (n-grams never span two of them:
    a prompt puts option labels or a template between the question and the options)."""
    parts = [ex.get("question"), *_option_texts(ex.get("choices")), ex.get("context")]
    return [p for p in parts if isinstance(p, str)]


def eval_ngrams(ex: Mapping[str, Any], n: int) -> set[Ngram]:
    return {g for text in eval_segments(ex) for g in ngrams(tokens(text), n)}


def _option_texts(choices: Any) -> list[str]:
    if isinstance(choices, Mapping):
        return [v for v in choices.values() if isinstance(v, str)]
    if isinstance(choices, list):
        return [v for v in choices if isinstance(v, str)]
    return []


# --- training records -------------------------------------------------------------------------------
def record_text(row: Mapping[str, Any], pool: str = "sft", index: int | None = None) -> str:
    """The user content of a training row (see the module docstring); DataError when it has none."""
    msgs = row.get("messages") if pool == "sft" else row.get("prompt")
    if msgs is None:
        msgs = row.get("messages") or row.get("prompt")
    if isinstance(msgs, list):
        users = [m.get("content") for m in msgs if isinstance(m, Mapping) and m.get("role") == "user"]
        texts = [u for u in users if isinstance(u, str)]
        if users and len(texts) == len(users):
            return "\n".join(texts)
    if isinstance(row.get("question"), str):
        return row["question"]
    raise DataError(
        pool,
        index,
        "messages" if pool == "sft" else "prompt",
        f"record {row.get('id')!r} has no user message and no question to compare",
    )


# --- the index --------------------------------------------------------------------------------------
class Index:
    """Inverted index from n-grams to the evaluation items that hold them."""

    def __init__(self, sets: list[EvalSet], n: int, max_eval_df: int | float | None = 0.02, min_coverage: float = 0.5):
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if not 0.0 <= min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage}")
        self.n, self.sets, self.min_coverage = n, sets, min_coverage
        self.items: list[tuple[int, str]] = []  # item number -> (set number, eval id)
        self.sizes: list[int] = []  # item number -> its distinct n-grams, boilerplate excluded
        self.postings: dict[Ngram, list[int]] = {}
        for s_i, es in enumerate(sets):
            local: dict[Ngram, list[int]] = {}
            grams_of: list[set[Ngram]] = []
            for j, ex in enumerate(es.examples):
                grams = eval_ngrams(ex, n)
                grams_of.append(grams)
                self.items.append((s_i, str(ex.get("id", f"{es.name}#{j}"))))
                for g in grams:
                    local.setdefault(g, []).append(len(self.items) - 1)
            limit = _df_limit(max_eval_df, len(es.examples))
            common = {g for g, posting in local.items() if len(posting) > limit}
            es.boilerplate = len(common)
            for grams in grams_of:
                size = len(grams - common) if common else len(grams)
                self.sizes.append(size)
                es.short_items += size == 0
            for g, posting in local.items():
                if g not in common:
                    self.postings.setdefault(g, []).extend(posting)
        self._keys = self.postings.keys()

    def matches(self, text: str) -> list[dict[str, Any]]:
        """Evaluation items whose n-grams `text` covers to at least `min_coverage`, most covered
        first: set, id, the first shared n-gram (in text order), shared count and coverage."""
        toks = tokens(text)
        hits = self._keys & set(ngrams(toks, self.n))
        if not hits:
            return []
        found: dict[int, list[Any]] = {}  # item -> [first shared n-gram, shared count]
        for g in dict.fromkeys(ngrams(toks, self.n)):  # distinct, in text order
            if g in hits:
                for item in self.postings[g]:
                    if item in found:
                        found[item][1] += 1
                    else:
                        found[item] = [g, 1]
        out = []
        for item, (g, shared) in found.items():
            coverage = shared / self.sizes[item]
            if coverage >= self.min_coverage:
                s_i, eval_id = self.items[item]
                out.append(
                    {
                        "eval_set": self.sets[s_i].name,
                        "eval_id": eval_id,
                        "ngram": ngram_text(g),
                        "shared": shared,
                        "coverage": round(coverage, 3),
                    }
                )
        out.sort(key=lambda m: (-m["coverage"], -m["shared"]))
        return out


def _df_limit(max_eval_df: int | float | None, size: int) -> float:
    """How many items of a set an n-gram may appear in before it counts as boilerplate."""
    if max_eval_df is None:
        return float("inf")
    if isinstance(max_eval_df, float):
        return max(5, int(max_eval_df * size))
    return max_eval_df


# --- entry point ------------------------------------------------------------------------------------
class _Provenance:
    """Links by `source_id` (a CFLUE_OE question keeps the id of the MCQ it was converted from)."""

    def __init__(self, sets: list[EvalSet]):
        self.by_id: dict[str, list[tuple[str, str]]] = {}  # eval id or eval source_id -> (set, eval id)
        self.by_source: dict[str, list[tuple[str, str]]] = {}  # eval source_id -> (set, eval id)
        for es in sets:
            for ex in es.examples:
                ref = (es.name, str(ex.get("id")))
                for key, table in (
                    (ex.get("id"), self.by_id),
                    (ex.get("source_id"), self.by_id),
                    (ex.get("source_id"), self.by_source),
                ):
                    if key is not None:
                        table.setdefault(str(key), []).append(ref)

    def matches(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        refs = []
        if row.get("source_id") is not None:
            refs += self.by_id.get(str(row["source_id"]), [])
        if row.get("id") is not None:
            refs += self.by_source.get(str(row["id"]), [])
        return [{"eval_set": s, "eval_id": i, "via": "source_id"} for s, i in dict.fromkeys(refs)]


def _filter(
    rows: list[dict[str, Any]], pool: str, index: Index, prov: _Provenance, overlaps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    kept = []
    for i, row in enumerate(rows):
        found = prov.matches(row) + [{**m, "via": "ngram"} for m in index.matches(record_text(row, pool, i))]
        if not found:
            kept.append(row)
            continue
        overlaps.append(
            {
                "pool": pool,
                "id": row.get("id"),
                "task": row.get("task"),
                "n_matches": len(found),
                "matches": found[:MAX_MATCHES_LISTED],
            }
        )
    return kept


def run(
    sft_rows: list[dict[str, Any]],
    rl_rows: list[dict[str, Any]],
    eval_sets: list[Any],
    n: int = 8,
    *,
    min_coverage: float = 0.5,
    max_eval_df: int | float | None = 0.02,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Drop SFT and RL rows that overlap any evaluation item; (kept_sft, kept_rl, report).

    A row overlaps an item when its n-grams cover at least `min_coverage` of the item's n-grams
    (0: any shared n-gram, as open-r1), or through `source_id`. `max_eval_df`: an n-gram in more
    than this many items of one evaluation set is boilerplate and ignored; a float is a fraction of
    the set (at least 5 items), None disables the filter. See the module docstring.
    """
    sets = [load_eval_set(spec, i) for i, spec in enumerate(eval_sets)]
    index = Index(sets, n, max_eval_df, min_coverage)
    prov = _Provenance(sets)
    overlaps: list[dict[str, Any]] = []
    kept_sft = _filter(sft_rows, "sft", index, prov, overlaps)
    kept_rl = _filter(rl_rows, "rl", index, prov, overlaps)
    report: dict[str, Any] = {
        "n": n,
        "tokenisation": "NFKC + casefold; one token per CJK character and per run of other letters/digits",
        "min_coverage": min_coverage,
        "max_eval_df": max_eval_df,
        "eval_sets": [
            {
                "name": s.name,
                "task": s.task,
                "path": s.path,
                "items": len(s.examples),
                "short_items": s.short_items,
                "boilerplate_ngrams": s.boilerplate,
            }
            for s in sets
        ],
        "checked": {"sft": len(sft_rows), "rl": len(rl_rows)},
        "dropped": {"sft": len(sft_rows) - len(kept_sft), "rl": len(rl_rows) - len(kept_rl)},
        "overlaps": overlaps,
    }
    log.info(
        "decontam: %d-grams against %d evaluation items in %d sets: dropped %d of %d SFT and %d of %d RL rows",
        n,
        len(index.items),
        len(sets),
        report["dropped"]["sft"],
        len(sft_rows),
        report["dropped"]["rl"],
        len(rl_rows),
    )
    return kept_sft, kept_rl, report


__all__ = [
    "CJK",
    "GUESS_ORDER",
    "EvalSet",
    "Index",
    "eval_ngrams",
    "eval_segments",
    "load_eval_set",
    "ngram_text",
    "ngrams",
    "record_text",
    "run",
    "tokens",
]
