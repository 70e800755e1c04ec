"""CCC (Chinese Compliance Check): did the customer-service agent in a dialogue break a rule?

Upstream's CCC set (1,800 SFT dialogues, ~200 test items) is proprietary and was never released
(docs/upstream.md §3.3 and §9.3), so this module defines our own JSONL schema,
documented in docs/ccc_schema.md. One object per line:

    {"id": "ccc-0001",
     "dialogue": [{"role": "客户", "text": "..."}, {"role": "客服", "text": "..."}],
     "rules": [{"id": "ticket_escalation", "name": "工单升级", "description": "..."}],   # optional
     "label": "violation",                                                             # or "compliant"
     "findings": [{"rule_id": "ticket_escalation", "triggered": true, "note": "..."}]}  # optional

- `role` is 客户/客服 or customer/agent (stored as 客户/客服); `text` is non-empty.
- `rules` defaults to `DEFAULT_RULES`, modelled on the paper's agents (regulator-complaint,
  social-media complaint, legal risk, ticket escalation, service auditor) plus two common
  conduct rules. Rule ids are unique.
- `label` is violation/compliant (违规/合规 are accepted and normalised).
- `findings[].triggered` is true when the agent breached that rule. Findings must agree with
  the label: a triggered finding means "violation"; a "violation" with findings needs one.

Examples carry `id, task, question` (the rendered dialogue), `dialogue, rules, gold`
(violation/compliant) and `findings` (list, possibly empty).

Prompt: upstream never published its prompts, so ours is documented here. One Chinese user
message: the rules, the numbered dialogue, and the contract: check rule by rule in <think>
(the paper's refined reasoning does the same: "按照既定的质检规则逐一进行检查"), then give
"最终结果为：客服违规/客服未违规" with a one-sentence reason in <answer>. The verdict is free text
(`boxed = False`), but `\\boxed{违规}` / `\\boxed{合规}` is read too.

Verdict reading (`read_verdict`), Chinese and English, negation-aware: "客服违规", "存在违规" ->
violation; "客服未违规", "不存在违规", "没有违规", "无违规", "合规", "no violation", "does not
violate", "compliant" -> compliant; "不合规", "non-compliant" -> violation. Question echoes
("是否违规", "有无违规", "违规与否", "whether the agent violated") are not verdicts, but an
answered one ("是否违规：否") is. A verdict right after a final-verdict phrase ("最终结果为：",
"结论：", "verdict:") beats all others; among equals the last one wins.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from pathlib import Path
from typing import Any

from dianjin import answer as fmt
from dianjin.tasks import register
from dianjin.tasks.base import DataError, Example, Judge, Messages, Task, jsonl_records

VIOLATION, COMPLIANT = "violation", "compliant"

# --- rules -------------------------------------------------------------------------------------
# `triggered` in a finding means the agent breached the rule. Copy before mutating.
DEFAULT_RULES: list[dict[str, str]] = [
    {
        "id": "regulator_complaint",
        "name": "监管机构投诉风险",
        "description": "客户表示要向监管机构（如国家金融监督管理总局、中国人民银行、证监会或12378等投诉热线）投诉时，"
        "客服应安抚客户、记录诉求并按流程升级工单；不得无视、劝阻或威胁客户。",
    },
    {
        "id": "social_media_complaint",
        "name": "社交媒体投诉风险",
        "description": "客户表示要在微博、短视频平台、投诉平台或新闻媒体曝光时，客服应安抚客户并升级工单；"
        "不得置之不理、嘲讽或威胁客户。",
    },
    {
        "id": "legal_risk",
        "name": "法律风险",
        "description": "客户提及起诉、律师函、仲裁或报警等法律行动时，客服应记录并转交专人处理；"
        "不得对法律后果作出承诺或误导性陈述，不得阻止客户依法维权。",
    },
    {
        "id": "ticket_escalation",
        "name": "工单升级",
        "description": "客户明确要求投诉、要求上级或专人处理，或出现上述高风险诉求时，客服必须创建或升级工单并告知处理时限；"
        "不得拒绝、拖延或谎称已升级。",
    },
    {
        "id": "service_conduct",
        "name": "客服服务规范",
        "description": "客服应文明礼貌，不得辱骂、嘲讽或威胁客户，不得推诿敷衍或无故挂断。",
    },
    {
        "id": "sales_promise",
        "name": "销售与承诺合规",
        "description": "客服不得承诺保本保收益、夸大收益或隐瞒风险，不得诱导客户购买与其风险承受能力不匹配的产品。",
    },
    {
        "id": "information_security",
        "name": "信息安全",
        "description": "客服不得索要客户的密码、短信验证码等敏感信息，不得泄露客户或他人的个人信息。",
    },
]

# Accepted speaker roles -> the stored (and displayed) role.
ROLES: dict[str, str] = {"客户": "客户", "customer": "客户", "客服": "客服", "agent": "客服"}

# Accepted gold labels (case-insensitive) -> normalised label.
LABELS: dict[str, str] = {
    "violation": VIOLATION,
    "违规": VIOLATION,
    "客服违规": VIOLATION,
    "non-compliant": VIOLATION,
    "compliant": COMPLIANT,
    "合规": COMPLIANT,
    "客服未违规": COMPLIANT,
    "未违规": COMPLIANT,
    "不违规": COMPLIANT,
    "no violation": COMPLIANT,
}

VERDICT_TEXT = {VIOLATION: "客服违规", COMPLIANT: "客服未违规"}

PROMPT = """你是一名金融客服质检专家。请依据下列质检规则，检查客服在以下对话中的表现是否违规。

【质检规则】
{rules}

【客服对话】
{dialogue}

要求：
1. 请在<think></think>中按照质检规则逐条检查：对每条规则先写分析过程，再判断客服是否违反该规则。
2. 客服违反任意一条规则即为违规；所有规则均未违反则为未违规。
3. 在<answer></answer>中写出最终结论（“最终结果为：客服违规”或“最终结果为：客服未违规”），并用一句话说明原因。"""


def rules_of(example: Example) -> list[dict[str, str]]:
    """The example's rules, or the default rule set when it has none."""
    return example.get("rules") or DEFAULT_RULES


def render_rules(rules: list[dict[str, str]]) -> str:
    """Numbered rule lines: `1. 工单升级：description`."""
    return "\n".join(f"{i}. {r['name']}：{r['description']}" for i, r in enumerate(rules, 1))


def render_dialogue(example: Example) -> str:
    """Numbered turns, one per line: `[1] 客户：...` (customer/agent roles shown as 客户/客服)."""
    lines = []
    for i, turn in enumerate(example.get("dialogue") or [], 1):
        role = ROLES.get(str(turn.get("role", "")).strip().lower(), str(turn.get("role", "")))
        lines.append(f"[{i}] {role}：{str(turn.get('text', '')).strip()}")
    return "\n".join(lines)


def normalize_label(value: Any) -> str | None:
    """violation/compliant from a gold label (also 违规/合规/客服违规/客服未违规); None otherwise."""
    if not isinstance(value, str):
        return None
    return LABELS.get(unicodedata.normalize("NFKC", value).strip().lower())


# --- verdict reading -----------------------------------------------------------------------------
# Words allowed between a negation and 违规 ("不存在任何违规", "未发现客服有违规").
_FILL = r"(?:发现|存在|构成|属于|算|见|有|任何|出现|涉及|明显|什么|客服|其他|其它|的|\s)"
_NEG = r"(?:并未|并不|并无|从未|未|不|没有|没|无|非)"
_ASK = r"(?:是否|有无|有没有|是不是|能否)"
_RULE_WORD = r"(?:规定|规范|要求|规则|标准|准则)"
# "合规" followed by these is a noun phrase (合规要求, 合规部门), not a verdict.
_COMPLIANCE_NOUN = (
    r"(?!要求|规则|规定|风险|检查|审查|质检|流程|部门|管理|性|问题|培训|政策|指引|义务|条款|人员|岗"
    r"|专员|审核|制度|标准|经营|方面|角度|意识|与否)"
)
_YES, _NO = r"(?:是|有|yes)(?![否无])", r"(?:否|无|没有|不|no\b)"
_ASKED_VIOLATE = rf"{_ASK}{_FILL}{{0,4}}违(?:规|反)[^？?：:\n。]{{0,12}}?[？?]?\s*[:：]\s*"
_ASKED_COMPLY = rf"{_ASK}合规[？?]?\s*[:：]\s*"

# Tried in order at each position; the leftmost match wins. label None = an echo, not a verdict.
_VERDICT_PATTERNS: list[tuple[str | None, str]] = [
    # answered questions: "是否违规：否"
    (VIOLATION, _ASKED_VIOLATE + _YES),
    (COMPLIANT, _ASKED_VIOLATE + _NO),
    (COMPLIANT, _ASKED_COMPLY + _YES),
    (VIOLATION, _ASKED_COMPLY + _NO),
    # question echoes and option lists
    (None, rf"{_ASK}{_FILL}{{0,4}}(?:违规|违反|合规|符合)"),
    (None, r"(?:违规|合规)与否"),
    (None, r"(?:客服)?(?:违规|合规|未违规|不违规)\s*(?:/|或者?|还是)\s*(?:客服)?(?:违规|合规|未违规|不违规)"),
    (None, r"\bwhether\b[^.?!\n]{0,60}?(?:violat\w*|compliant|compliance)"),
    (None, r"\b(?:violation|compliant)\s*(?:/|\bor\b)\s*(?:no\s+violation|non-?compliant|compliant|violation|not)\b"),
    (
        None,
        r"\b(?:is|was|are|does|did)\s+(?:there|the\s+agent|the\s+representative|this)\b"
        r"[^.?!\n]{0,40}?(?:violat\w*|compliant)[^.?!\n]{0,30}\?",
    ),
    # compliant (negations first: they start before the 违规 they negate)
    (COMPLIANT, rf"{_NEG}{_FILL}{{0,4}}违(?:规|反)"),
    (COMPLIANT, rf"(?<![不非])符合(?:合规)?{_RULE_WORD}"),
    (COMPLIANT, rf"合规{_COMPLIANCE_NOUN}"),
    (
        COMPLIANT,
        r"\b(?:no|without(?:\s+any)?|not\s+an?|not\s+any|zero|free\s+of(?:\s+any)?)\s+"
        r"(?:compliance\s+|rule\s+|policy\s+)?violations?\b",
    ),
    (COMPLIANT, r"(?:\bnot|\bnever|n't)\s+(?:(?:\w+ly|any|in\s+any\s+way)\s+)?(?:in\s+)?violat(?:e|es|ed|ing|ion)\b"),
    (COMPLIANT, r"(?<!not\s)\bin\s+compliance\b"),
    (COMPLIANT, r"(?<!non-)(?<!non\s)\bcompliant\b"),
    # violation
    (VIOLATION, rf"(?:不|非|未|没有?)(?:属于|算|够|太|完全)?合规{_COMPLIANCE_NOUN}"),
    (VIOLATION, rf"不符合(?:合规)?{_RULE_WORD}"),
    (VIOLATION, r"违(?:规|反)"),
    (VIOLATION, r"\bnon-?\s?compliant\b|\bnot\s+(?:fully\s+)?compliant\b|\bnot\s+in\s+compliance\b"),
    (VIOLATION, r"\bviolat(?:e|es|ed|ing|ion|ions)\b|\bbreach(?:ed|es)?\b|\bin\s+breach\b"),
]
# Every pattern starts with one of these characters; the lookahead lets the scan skip other positions fast.
_FIRST_CHARS = "是有能违合客未不没无并从非符abcdfinvwz"
_VERDICT = re.compile(
    f"(?=[{_FIRST_CHARS}])(?:" + "|".join(f"(?P<v{i}>{p})" for i, (_, p) in enumerate(_VERDICT_PATTERNS)) + ")",
    re.IGNORECASE,
)
_VERDICT_LABEL = {f"v{i}": label for i, (label, _) in enumerate(_VERDICT_PATTERNS)}

# Final-verdict phrases; a verdict starting at most ANCHOR_GAP characters after one (same sentence) wins.
_ANCHOR = re.compile(
    r"最终(?:的)?(?:结果|结论|判定|判断|答案|裁定)|(?:质检|判定|检查|审核|审计)?结论|(?:质检|判定|检查)结果|综上"
    r"|\bverdict\b|\bfinal\s+(?:answer|result|decision|verdict|conclusion)\b|\bconclusion\b",
    re.IGNORECASE,
)
ANCHOR_GAP = 20
_SENTENCE_END = re.compile(r"[。！？!?；;]")


def read_verdict(text: str) -> str | None:
    """violation / compliant read from free text (see the module docstring); None when none."""
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text[-fmt.TAIL_CHARS :])
    anchors = [m.end() for m in _ANCHOR.finditer(text)]
    last = last_anchored = None
    for m in _VERDICT.finditer(text):
        assert m.lastgroup is not None  # every alternative of _VERDICT is a named group
        label = _VERDICT_LABEL[m.lastgroup]
        if label is None:
            continue
        last = label
        i = bisect.bisect_right(anchors, m.start()) - 1
        if i >= 0:
            gap = text[anchors[i] : m.start()]
            if len(gap) <= ANCHOR_GAP and not _SENTENCE_END.search(gap):
                last_anchored = label
    return last_anchored or last


# --- loading -------------------------------------------------------------------------------------
def _text_field(path: Path, line: int, rec: dict, field: str, where: str = "") -> str:
    value = rec.get(field)
    if not isinstance(value, str) or not value.strip():
        got = "nothing" if field not in rec else f"{type(value).__name__} {str(value)[:40]!r}"
        raise DataError(path, line, where + field, f"expected a non-empty string, got {got}")
    return value.strip()


def _list_field(path: Path, line: int, rec: dict, field: str, optional: bool) -> list:
    value = rec.get(field)
    if value is None and optional:
        return []
    if not isinstance(value, list) or (not optional and not value):
        raise DataError(
            path, line, field, f"expected a {'' if optional else 'non-empty '}list, got {type(value).__name__}"
        )
    for j, item in enumerate(value):
        if not isinstance(item, dict):
            raise DataError(path, line, f"{field}[{j}]", f"expected an object, got {type(item).__name__}")
    return value


def _dialogue(path: Path, line: int, rec: dict) -> list[dict[str, str]]:
    turns = []
    for j, turn in enumerate(_list_field(path, line, rec, "dialogue", optional=False)):
        role = _text_field(path, line, turn, "role", f"dialogue[{j}].")
        if role.lower() not in ROLES:
            raise DataError(
                path, line, f"dialogue[{j}].role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}"
            )
        turns.append({"role": ROLES[role.lower()], "text": _text_field(path, line, turn, "text", f"dialogue[{j}].")})
    return turns


def _rules(path: Path, line: int, rec: dict) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = []
    for j, rule in enumerate(_list_field(path, line, rec, "rules", optional=True)):
        rules.append({k: _text_field(path, line, rule, k, f"rules[{j}].") for k in ("id", "name", "description")})
        if rules[-1]["id"] in {r["id"] for r in rules[:-1]}:
            raise DataError(path, line, f"rules[{j}].id", f"duplicate rule id {rules[-1]['id']!r}")
    return rules or [dict(r) for r in DEFAULT_RULES]


def _findings(path: Path, line: int, rec: dict, rules: list[dict[str, str]], label: str) -> list[dict[str, Any]]:
    ids = {r["id"] for r in rules}
    findings = []
    for j, f in enumerate(_list_field(path, line, rec, "findings", optional=True)):
        rule_id = _text_field(path, line, f, "rule_id", f"findings[{j}].")
        if rule_id not in ids:
            raise DataError(
                path, line, f"findings[{j}].rule_id", f"{rule_id!r} is not a rule id ({', '.join(sorted(ids))})"
            )
        if not isinstance(f.get("triggered"), bool):
            raise DataError(path, line, f"findings[{j}].triggered", f"expected true/false, got {f.get('triggered')!r}")
        note = f.get("note", "")
        if not isinstance(note, str):
            raise DataError(path, line, f"findings[{j}].note", f"expected a string, got {type(note).__name__}")
        findings.append({"rule_id": rule_id, "triggered": f["triggered"], "note": note.strip()})
    triggered = any(f["triggered"] for f in findings)
    if triggered and label != VIOLATION:
        raise DataError(path, line, "label", "a finding is triggered but the label is 'compliant'")
    if findings and label == VIOLATION and not triggered:
        raise DataError(path, line, "findings", "label is 'violation' but no finding is triggered")
    return findings


def _example(path: Path, line: int, rec: Any) -> Example:
    if not isinstance(rec, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(rec).__name__}")
    ex_id = _text_field(path, line, rec, "id")
    label = normalize_label(rec.get("label"))
    if label is None:
        raise DataError(path, line, "label", f"expected 'violation' or 'compliant', got {rec.get('label')!r}")
    rules = _rules(path, line, rec)
    ex: Example = {"id": ex_id, "task": CccTask.name, "dialogue": _dialogue(path, line, rec), "rules": rules}
    ex["question"] = render_dialogue(ex)
    ex["gold"] = label
    ex["findings"] = _findings(path, line, rec, rules, label)
    return ex


def load_jsonl(path: str | Path) -> list[Example]:
    """Read a CCC JSONL file (schema above); DataError names the line and field of any problem."""
    path = Path(path)
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for lineno, rec in jsonl_records(path):
        ex = _example(path, lineno, rec)
        if ex["id"] in seen:
            raise DataError(path, lineno, "id", f"duplicate id {ex['id']!r} (first on line {seen[ex['id']]})")
        seen[ex["id"]] = lineno
        examples.append(ex)
    return examples


@register("ccc_r1", "dianjin/ccc", "chinese_compliance_check")
class CccTask(Task):
    """Compliance check of a customer-service dialogue: the gold is violation/compliant."""

    name = "ccc"
    boxed = False

    def load(self, path: str) -> list[Example]:
        return load_jsonl(path)

    def messages(self, example: Example) -> Messages:
        dialogue = render_dialogue(example) or str(example.get("question", ""))
        content = PROMPT.format(rules=render_rules(rules_of(example)), dialogue=dialogue)
        return [{"role": "user", "content": content}]

    def extract(self, text: str, example: Example) -> str | None:
        return read_verdict(text)

    def check(self, pred: str, example: Example, judge: Judge | None = None) -> tuple[bool | None, str]:
        gold = normalize_label(example.get("gold"))
        if gold is None:
            return None, f"unparseable gold {example.get('gold')!r}"
        got = pred if pred in (VIOLATION, COMPLIANT) else read_verdict(str(pred))
        if got == gold:
            return True, f"verdict {got} matches the gold"
        return False, f"predicted {got or pred!r}, gold {gold}"

    def chance(self, example: Example) -> float:
        return 0.5  # violation or compliant

    def reference(self, example: Example) -> str:
        """`最终结果为：客服违规。原因：...` (the breached rules and notes, from the findings)."""
        gold = normalize_label(example.get("gold")) or str(example.get("gold"))
        head = f"最终结果为：{VERDICT_TEXT.get(gold, gold)}。"
        names = {r["id"]: r["name"] for r in rules_of(example)}
        reasons = [
            f"“{names.get(f['rule_id'], f['rule_id'])}”" + (f"（{f['note'].rstrip('。')}）" if f.get("note") else "")
            for f in example.get("findings") or []
            if f.get("triggered")
        ]
        if reasons:
            return head + "原因：客服违反了" + "、".join(reasons) + "。"
        if gold == COMPLIANT:
            return head + "客服的表现没有触犯任何一条质检规则。"
        return head
