"""CCC-style dialogues: CCC JSONL records `{id, dialogue, label, findings}` (docs/ccc_schema.md; rules =
`dianjin.tasks.ccc.DEFAULT_RULES`, so no `rules` field).

Even i violation, odd i compliant; scenarios (`CCC_SCENARIOS`, each aimed at one default rule,
information security twice) cycle so each gets both labels: the customer threatens a regulator
complaint / social media / legal action, asks to complain to a supervisor, asks for an
explanation again, asks about a product's returns, needs login help, asks about a relative's
accounts. The agent's key reply follows the rule or breaks it (dissuades, mocks, threatens,
refuses a ticket, promises returns, asks for an SMS code, leaks data...). `findings` list every
rule the reply touches, triggered exactly when breached (so the label always agrees with them).
The phrases, replies and findings are package data (tables/ccc.json); how a scenario opens is
one of `OPENERS`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dianjin.data.synthetic.common import Record, check_n, load_table
from dianjin.files import write_jsonl
from dianjin.tasks.ccc import COMPLIANT, DEFAULT_RULES, VIOLATION

Turns = list[tuple[str, str]]  # (role, text)

_TABLES = load_table("ccc")
BANKS: tuple[str, ...] = tuple(_TABLES["banks"])
GREETINGS: tuple[str, ...] = tuple(_TABLES["greetings"])  # templates: {bank}
ISSUES: tuple[str, ...] = tuple(_TABLES["issues"])  # templates: {amt}, {days}, {wan}
FIRST_REPLIES: tuple[str, ...] = tuple(_TABLES["first_replies"])
# (customer, agent) closing turns of a compliant dialogue: after a complaint, after an enquiry
CLOSINGS_COMPLAINT: tuple[tuple[str, str], ...] = tuple((c, a) for c, a in _TABLES["closings"]["complaint"])
CLOSINGS_ENQUIRY: tuple[tuple[str, str], ...] = tuple((c, a) for c, a in _TABLES["closings"]["enquiry"])
CLOSINGS_BAD: tuple[str, ...] = tuple(_TABLES["closings"]["bad"])  # the customer's last word after a violation
REGULATORS: tuple[str, ...] = tuple(_TABLES["regulators"])
PLATFORMS: tuple[str, ...] = tuple(_TABLES["platforms"])
LEGAL_ACTIONS: tuple[str, ...] = tuple(_TABLES["legal_actions"])
PRODUCTS: tuple[str, ...] = tuple(_TABLES["products"])  # templates: {k}
_OPENING = _TABLES["openers"]  # the phrases of the openers below


@dataclass(frozen=True)
class Reply:
    """The agent's key reply and the per-rule outcome it causes: rule id -> (triggered, note)."""

    text: str
    findings: tuple[tuple[str, bool, str], ...]


@dataclass(frozen=True)
class Scenario:
    """A dialogue situation aimed at one rule: how it opens, the customer's trigger, the replies."""

    opener: str  # a key of OPENERS: the turns before the key reply
    compliant: tuple[Reply, ...]
    violation: tuple[Reply, ...]
    closings: tuple[tuple[str, str], ...]  # for compliant dialogues
    trigger: str = ""  # the customer's line the complaint opener ends with (a template)

    def open(self, rng: random.Random, v: dict[str, Any]) -> Turns:
        return OPENERS[self.opener](rng, v, self.trigger)


def _complaint_opener(rng: random.Random, v: dict[str, Any], trigger: str) -> Turns:
    """Customer states an issue, the agent stalls, the customer says `trigger`."""
    return [
        ("客户", rng.choice(ISSUES).format(**v)),
        ("客服", rng.choice(FIRST_REPLIES)),
        ("客户", trigger.format(**v)),
    ]


def _sales_opener(rng: random.Random, v: dict[str, Any], trigger: str) -> Turns:
    return [("客户", _OPENING["sales"].format(**v))]


def _login_opener(rng: random.Random, v: dict[str, Any], trigger: str) -> Turns:
    return [("客户", rng.choice(_OPENING["login"]).format(**v))]


def _relative_opener(rng: random.Random, v: dict[str, Any], trigger: str) -> Turns:
    phrases = _OPENING["relative"]
    who, what = rng.choice(phrases["who"]), rng.choice(phrases["what"])
    return [("客户", phrases["template"].format(who=who, what=what))]


def _repeat_opener(rng: random.Random, v: dict[str, Any], trigger: str) -> Turns:
    phrases = _OPENING["repeat"]
    return [
        ("客户", rng.choice(ISSUES).format(**v)),
        ("客服", phrases["agent"].format(**v)),
        ("客户", rng.choice(phrases["customer"])),
    ]


# opener name (a scenario's "opener" in tables/ccc.json) -> fn(rng, values, trigger) -> turns
OPENERS: dict[str, Callable[[random.Random, dict[str, Any], str], Turns]] = {
    "complaint": _complaint_opener,
    "sales": _sales_opener,
    "login": _login_opener,
    "relative": _relative_opener,
    "repeat": _repeat_opener,
}
_CLOSINGS = {"complaint": CLOSINGS_COMPLAINT, "enquiry": CLOSINGS_ENQUIRY}


def _replies(items: list[dict[str, Any]]) -> tuple[Reply, ...]:
    return tuple(Reply(r["text"], tuple((rule, hit, note) for rule, hit, note in r["findings"])) for r in items)


def _scenario(d: dict[str, Any]) -> Scenario:
    return Scenario(
        d["opener"], _replies(d["compliant"]), _replies(d["violation"]), _CLOSINGS[d["closings"]], d.get("trigger", "")
    )


CCC_SCENARIOS: dict[str, Scenario] = {name: _scenario(d) for name, d in _TABLES["scenarios"].items()}


def _ccc_values(rng: random.Random) -> dict[str, Any]:
    return {
        "bank": rng.choice(BANKS),
        "amt": rng.randrange(50, 5001, 10),
        "days": rng.randint(3, 30),
        "n": rng.randint(1, 5),
        "ticket": f"TS{rng.randrange(10**9, 10**10)}",
        "regulator": rng.choice(REGULATORS),
        "platform": rng.choice(PLATFORMS),
        "legal": rng.choice(LEGAL_ACTIONS),
        "wan": rng.randrange(5, 201, 5),
        "tail": f"{rng.randrange(10_000):04d}",
        "product": rng.choice(PRODUCTS).format(k=rng.randint(1, 30)),
        "risk": rng.choice(("R2", "R3", "R4")),
        "rate": f"{rng.randrange(250, 601, 5) / 100:.2f}",
        "high": f"{rng.randrange(800, 2001, 10) / 100:.1f}",
    }


def _ccc_record(i: int, seed: int, scenario: str, label: str, rng: random.Random) -> Record:
    sc = CCC_SCENARIOS[scenario]
    v = _ccc_values(rng)
    reply = rng.choice(sc.violation if label == VIOLATION else sc.compliant)
    turns = [("客服", rng.choice(GREETINGS).format(**v))] if rng.random() < 0.7 else []
    turns += sc.open(rng, v) + [("客服", reply.text.format(**v))]
    if label == COMPLIANT:
        customer, agent = rng.choice(sc.closings)
        turns += [("客户", customer), ("客服", agent)]
    elif rng.random() < 0.6:
        turns.append(("客户", rng.choice(CLOSINGS_BAD)))
    findings = [{"rule_id": rule, "triggered": hit, "note": note.format(**v)} for rule, hit, note in reply.findings]
    return {
        "id": f"ccc-syn-{seed}-{i:04d}",
        "dialogue": [{"role": r, "text": t} for r, t in turns],
        "label": label,
        "findings": findings,
    }


def ccc_style(n: int, seed: int) -> list[Record]:
    """`n` CCC dialogues: even i violation, odd i compliant; each scenario gets both labels in turn."""
    check_n(n, "ccc_style")
    names = list(CCC_SCENARIOS)
    return [
        _ccc_record(
            i, seed, names[(i // 2) % len(names)], (VIOLATION, COMPLIANT)[i % 2], random.Random(f"ccc:{seed}:{i}")
        )
        for i in range(n)
    ]


def _check_scenarios() -> None:
    """A typo in tables/ccc.json (a rule id, an opener) must fail at import, not later in the CCC loader."""
    ids = {r["id"] for r in DEFAULT_RULES}
    for name, sc in CCC_SCENARIOS.items():
        if sc.opener not in OPENERS:
            raise ValueError(f"CCC scenario {name!r}: unknown opener {sc.opener!r} (known: {', '.join(OPENERS)})")
        for reply in sc.compliant + sc.violation:
            unknown = {f[0] for f in reply.findings} - ids
            if unknown:
                raise ValueError(f"CCC scenario {name!r}: unknown rule ids {sorted(unknown)}")


_check_scenarios()


def write_ccc(records: list[Record], path: str | Path) -> Path:
    """JSONL, one dialogue a line (docs/ccc_schema.md)."""
    return write_jsonl(path, records)
