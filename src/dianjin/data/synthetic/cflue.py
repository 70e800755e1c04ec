"""CFLUE-style records: CFLUE knowledge.json's schema `{名称, task, question, choices, answer, analysis}`.

`task` is 单项选择题 / 多项选择题 / 判断题, `choices` a Python dict literal STRING (as in CFLUE),
`answer` sorted letters, `analysis` an explanation of every option. Kinds (`CFLUE_KINDS`):
classification questions from `TAXONOMIES` (货币政策工具, 会计要素, 税种, 证券品种, 金融市场, 银行风险;
"belongs to", "does not belong to", select-all, true/false), statements from `TOPICS` (each fact
has a true and a false wording and a reason), and calculations from `CALCS` (module
`cflue_calcs`, re-exported here: simple interest, real rate, deposit creation, quick ratio, equity
after a transaction, current yield, VAT payable, bill discount) with seeded numbers and distractors
from common mistakes. The taxonomies and topics are package data (tables/cflue.json). One block
of len(CFLUE_KINDS) records in four is English.
Deviation: CFLUE has no English questions; ours are bilingual on purpose (the model is).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dianjin.data.synthetic.cflue_calcs import CALCS, Calc, distinct_values
from dianjin.data.synthetic.common import Record, check_n, load_table, tr, write_json

__all__ = [
    "CALCS",
    "CFLUE_KINDS",
    "LANG_CYCLE",
    "LETTERS",
    "MULTI",
    "SINGLE",
    "TAXONOMIES",
    "TF",
    "TF_CHOICES",
    "TOPICS",
    "Calc",
    "Fact",
    "Group",
    "Taxonomy",
    "Topic",
    "cflue_style",
    "distinct_values",
    "write_cflue",
]

LETTERS = "ABCDEFG"
LANG_CYCLE = ("zh", "en", "zh", "zh")  # one block in four is English: "mostly Chinese"

SINGLE, MULTI, TF = "单项选择题", "多项选择题", "判断题"
TF_CHOICES = {"zh": {"A": "对", "B": "错"}, "en": {"A": "True", "B": "False"}}


@dataclass(frozen=True)
class Group:
    """One category of a taxonomy and its members, each as (zh, en)."""

    zh: str
    en: str
    members: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Taxonomy:
    exam: str  # CFLUE's 名称
    noun_zh: str  # what the options are: 选项 / 税种 / 情形
    noun_en: str
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class Fact:
    """A statement with a true and a false wording and the reason, in both languages."""

    true_zh: str
    false_zh: str
    why_zh: str
    true_en: str
    false_en: str
    why_en: str

    def text(self, lang: str, true: bool) -> str:
        return getattr(self, f"{'true' if true else 'false'}_{lang}")

    def why(self, lang: str) -> str:
        return getattr(self, f"why_{lang}")


@dataclass(frozen=True)
class Topic:
    zh: str
    en: str
    exam: str
    facts: tuple[Fact, ...]


def _taxonomy(d: dict[str, Any]) -> Taxonomy:
    groups = tuple(Group(g["zh"], g["en"], tuple((zh, en) for zh, en in g["members"])) for g in d["groups"])
    return Taxonomy(d["exam"], d["noun_zh"], d["noun_en"], groups)


def _topic(d: dict[str, Any]) -> Topic:
    return Topic(d["zh"], d["en"], d["exam"], tuple(Fact(**fact) for fact in d["facts"]))


_TABLES = load_table("cflue")
TAXONOMIES: dict[str, Taxonomy] = {name: _taxonomy(d) for name, d in _TABLES["taxonomies"].items()}
TOPICS: dict[str, Topic] = {name: _topic(d) for name, d in _TABLES["topics"].items()}


# --- CFLUE record assembly ---------------------------------------------------------------------
def _cflue_record(exam: str, qtype: str, question: str, options: list[str], correct: set[int], analysis: str) -> Record:
    """The CFLUE record; `options` already in display order, `correct` their indices."""
    choices = {LETTERS[k]: text for k, text in enumerate(options)}
    answer = "".join(LETTERS[k] for k in sorted(correct))
    return {
        "名称": exam,
        "task": qtype,
        "question": question,
        "choices": repr(choices),
        "answer": answer,
        "analysis": analysis,
    }


def _conclude(lang: str, answer: str) -> str:
    return tr(lang, f"因此，本题答案为{answer}。", f"Therefore the answer is {answer}.")


def _quote(lang: str, text: str) -> str:
    return tr(lang, f"“{text}”", f'"{text}"')


def _join(lang: str, *parts: str) -> str:
    """Sentences run together in Chinese, space-separated in English."""
    return tr(lang, "", " ").join(p.strip() for p in parts if p.strip())


def _pick_taxonomy(rng: random.Random, min_members: int = 1) -> tuple[Taxonomy, int]:
    """A taxonomy and the index of one of its groups with at least `min_members` members."""
    tax = TAXONOMIES[rng.choice(sorted(TAXONOMIES))]
    fits = [g for g, group in enumerate(tax.groups) if len(group.members) >= min_members]
    return tax, rng.choice(fits)


def _member_lines(lang: str, tax: Taxonomy, options: list[tuple[int, int]]) -> str:
    """One clause per option: which group it belongs to."""
    parts = []
    for k, (g, m) in enumerate(options):
        group, text = tax.groups[g], tax.groups[g].members[m][0 if lang == "zh" else 1]
        parts.append(
            tr(
                lang,
                f"{LETTERS[k]}项{_quote(lang, text)}属于{group.zh}",
                f"({LETTERS[k]}) {_quote(lang, text)} falls under {group.en}",
            )
        )
    return tr(lang, "；".join(parts) + "。", "; ".join(parts) + ".")


def _group_intro(lang: str, group: Group) -> str:
    names = [m[0 if lang == "zh" else 1] for m in group.members]
    return tr(lang, f"{group.zh}包括{'、'.join(names)}等。", f"The category of {group.en} covers {', '.join(names)}.")


def _classify(rng: random.Random, lang: str, negate: bool = False, multi: bool = False) -> Record:
    """Options drawn from the groups of one taxonomy; the answer is membership (or its absence)."""
    tax, g = _pick_taxonomy(rng, min_members=3 if (negate or multi) else 1)
    group, others = (
        tax.groups[g],
        [(h, m) for h, grp in enumerate(tax.groups) if h != g for m in range(len(grp.members))],
    )
    inside = [(g, m) for m in range(len(group.members))]
    if multi:
        n_opts = rng.choice((4, 5)) if len(others) >= 3 else 4
        n_in = rng.randint(2, min(len(inside), n_opts - 1))
        picked = rng.sample(inside, n_in) + rng.sample(others, n_opts - n_in)
    elif negate:
        picked = rng.sample(inside, 3) + [rng.choice(others)]
    else:
        picked = [rng.choice(inside)] + rng.sample(others, 3)
    rng.shuffle(picked)
    want_inside = not negate
    correct = {k for k, (h, _) in enumerate(picked) if (h == g) == want_inside}
    options = [tax.groups[h].members[m][0 if lang == "zh" else 1] for h, m in picked]
    noun_zh, noun_en = tax.noun_zh, tax.noun_en
    if multi:
        qtype = MULTI
        q = tr(
            lang,
            f"下列{noun_zh}中，属于{group.zh}的有（ ）。",
            f"Which of the following {noun_en} belong to {group.en}? (Select all that apply.)",
        )
    else:
        qtype = SINGLE
        q = tr(
            lang,
            f"下列{noun_zh}中，{'不' if negate else ''}属于{group.zh}的是（ ）。",
            f"Which of the following {noun_en} {'does NOT belong' if negate else 'belongs'} to {group.en}?",
        )
    answer = "".join(LETTERS[k] for k in sorted(correct))
    analysis = _join(lang, _group_intro(lang, group), _member_lines(lang, tax, picked), _conclude(lang, answer))
    return _cflue_record(tax.exam, qtype, q, options, correct, analysis)


def _classify_tf(rng: random.Random, lang: str) -> Record:
    tax, g = _pick_taxonomy(rng)
    group = tax.groups[g]
    true = rng.random() < 0.5
    if true:
        h, m = g, rng.randrange(len(group.members))
    else:
        h = rng.choice([x for x in range(len(tax.groups)) if x != g])
        m = rng.randrange(len(tax.groups[h].members))
    text = tax.groups[h].members[m][0 if lang == "zh" else 1]
    q = tr(lang, f"{text}属于{group.zh}。（ ）", f"The category of {group.en} includes {text}. (True or False?)")
    fact = tr(
        lang,
        f"{_quote(lang, text)}属于{tax.groups[h].zh}",
        f"The category of {tax.groups[h].en} includes {_quote(lang, text)}",
    )
    verdict = tr(
        lang, f"，题目说法{'正确' if true else '错误'}。", f", so the statement is {'true' if true else 'false'}."
    )
    answer = "A" if true else "B"
    analysis = _join(lang, _group_intro(lang, group), fact + verdict, _conclude(lang, answer))
    return _cflue_record(tax.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


def _statement_lines(lang: str, facts: list[Fact], truths: list[bool]) -> str:
    parts = [
        tr(
            lang,
            f"{LETTERS[k]}项{'正确' if ok else '错误'}：{f.why(lang)}",
            f"({LETTERS[k]}) is {'correct' if ok else 'incorrect'}: {f.why(lang)}",
        )
        for k, (f, ok) in enumerate(zip(facts, truths))
    ]
    return "\n".join(parts)


def _statements(rng: random.Random, lang: str, multi: bool = False) -> Record:
    """Options are statements of one topic, each in its true or its false wording."""
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    if multi:
        n_opts = rng.choice((4, 5))
        n_true = rng.randint(2, n_opts - 1)
        truths = [True] * n_true + [False] * (n_opts - n_true)
        want = True
    else:
        n_opts, want = 4, rng.random() < 0.5  # want: ask for the correct one or the incorrect one
        truths = [want] + [not want] * 3
    facts = rng.sample(topic.facts, n_opts)
    order = list(range(n_opts))
    rng.shuffle(order)
    facts, truths = [facts[k] for k in order], [truths[k] for k in order]
    options = [f.text(lang, ok) for f, ok in zip(facts, truths)]
    correct = {k for k, ok in enumerate(truths) if ok == want}
    if multi:
        qtype = MULTI
        q = tr(
            lang,
            f"关于{topic.zh}，下列说法中正确的有（ ）。",
            f"Regarding {topic.en}, which of the following statements are correct? (Select all that apply.)",
        )
    else:
        qtype = SINGLE
        q = tr(
            lang,
            f"关于{topic.zh}，下列说法{'正确' if want else '错误'}的是（ ）。",
            f"Regarding {topic.en}, which of the following statements is {'correct' if want else 'INCORRECT'}?",
        )
    answer = "".join(LETTERS[k] for k in sorted(correct))
    analysis = _statement_lines(lang, facts, truths) + "\n" + _conclude(lang, answer)
    return _cflue_record(topic.exam, qtype, q, options, correct, analysis)


def _statement_tf(rng: random.Random, lang: str) -> Record:
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    fact, true = rng.choice(topic.facts), rng.random() < 0.5
    q = fact.text(lang, true) + tr(lang, "（ ）", " (True or False?)")
    verdict = tr(lang, f"该说法{'正确' if true else '错误'}。", f"The statement is {'true' if true else 'false'}. ")
    answer = "A" if true else "B"
    analysis = _join(lang, verdict, fact.why(lang), _conclude(lang, answer))
    return _cflue_record(topic.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


def _calc_mcq(rng: random.Random, lang: str) -> Record:
    calc = CALCS[rng.choice(sorted(CALCS))](rng, lang)
    values = distinct_values(calc, 4)
    order = list(range(4))
    rng.shuffle(order)
    options = [values[k] for k in order]
    correct = {order.index(0)}
    answer = LETTERS[order.index(0)]
    analysis = _join(lang, *calc.steps, _conclude(lang, answer))
    return _cflue_record(calc.exam, SINGLE, _join(lang, calc.context, calc.ask), options, correct, analysis)


def _calc_tf(rng: random.Random, lang: str) -> Record:
    calc = CALCS[rng.choice(sorted(CALCS))](rng, lang)
    values = distinct_values(calc, 2)
    true = rng.random() < 0.5
    shown = values[0] if true else values[1]
    claim = calc.claim.format(value=shown)
    q = _join(lang, calc.context, claim + tr(lang, "（ ）", " (True or False?)"))
    verdict = tr(
        lang,
        f"正确结果为{values[0]}，题目说法{'正确' if true else '错误'}。",
        f"The correct result is {values[0]}, so the statement is {'true' if true else 'false'}.",
    )
    answer = "A" if true else "B"
    analysis = _join(lang, *calc.steps, verdict, _conclude(lang, answer))
    return _cflue_record(calc.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


# kind -> fn(rng, lang) -> CFLUE record
CFLUE_KINDS: dict[str, Callable[[random.Random, str], Record]] = {
    "classify": _classify,
    "classify_not": lambda rng, lang: _classify(rng, lang, negate=True),
    "classify_multi": lambda rng, lang: _classify(rng, lang, multi=True),
    "classify_tf": _classify_tf,
    "statement": _statements,
    "statement_multi": lambda rng, lang: _statements(rng, lang, multi=True),
    "statement_tf": _statement_tf,
    "calc": _calc_mcq,
    "calc_tf": _calc_tf,
}


def cflue_style(n: int, seed: int) -> list[Record]:
    """`n` CFLUE knowledge.json records; kinds cycle, one block of len(CFLUE_KINDS) in four is English."""
    check_n(n, "cflue_style")
    kinds = list(CFLUE_KINDS)
    out = []
    for i in range(n):
        kind, lang = kinds[i % len(kinds)], LANG_CYCLE[(i // len(kinds)) % len(LANG_CYCLE)]
        out.append(CFLUE_KINDS[kind](random.Random(f"cflue:{seed}:{i}"), lang))
    return out


def write_cflue(records: list[Record], path: str | Path) -> Path:
    """A JSON array, like CFLUE's knowledge.json."""
    return write_json(records, path)
