"""Scorer throughput: responses scored per second on one core, per task, on ~2k-token responses.

    .venv/bin/python bench/bench_scorers.py [--n 300] [--json out.json]

Side by side in one run, for each task:
- ours, eval mode (lenient extraction) and reward mode (strict gate),
- the naive way: upstream DianJin-R1's regex reward (`reward_score_cflue.py`: three `re.findall`
  with DOTALL over the whole response, then a letter scan) applied to the same responses, and for
  MATH-500 math-verify run on the whole response without our extraction,
- the physical floor: one C-speed pass over the response bytes (`str.count`), an upper bound on
  what any scorer that reads the response can reach.
Runs in one process, one thread (the figures are per core).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time

from dianjin.answer import render
from dianjin.data.synthetic.fincalc import generate
from dianjin.tasks import get_task

FILLER_ZH = "根据题意，我们先整理已知条件：营业收入为 {a} 万元，营业成本为 {b} 万元，因此毛利为 {c} 万元。"
FILLER_EN = "From the table, revenue was ${a} million and costs were ${b} million, so the margin is ${c} million. "
TARGET_CHARS = 6_000  # about 2k tokens of mixed Chinese/English reasoning


def reasoning(rng: random.Random, lang: str) -> str:
    parts, n = [], 0
    while n < TARGET_CHARS:
        a, b = rng.randint(100, 9999), rng.randint(10, 99)
        s = (FILLER_ZH if lang == "zh" else FILLER_EN).format(a=a, b=b, c=a - b)
        s += f" 计算 $\\frac{{{a}}}{{{b}}} \\approx {a / b:.4f}$。\n" if rng.random() < 0.3 else "\n"
        parts.append(s)
        n += len(s)
    return "".join(parts)


def cases(n: int, seed: int = 0) -> dict[str, list[tuple[str, dict]]]:
    """(response, example) pairs per task, each response ending in the example's correct answer."""
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, dict]]] = {}
    choices = {"A": "债券", "B": "股票", "C": "基金", "D": "期货"}
    out["cflue"] = [
        (render(reasoning(rng, "zh"), "综上，答案如下。", boxed=g), {"gold": g, "choices": choices})
        for g in (rng.choice(["A", "BC", "ACD"]) for _ in range(n))
    ]
    out["finqa"] = [
        (render(reasoning(rng, "en"), f"The change is {v * 100:.3f}%.", boxed=f"{v * 100:.3f}\\%"), {"gold": v})
        for v in (round(rng.uniform(-1, 1), 5) for _ in range(n))
    ]
    maths = ["\\frac{1}{2}", "3\\sqrt{2}", "(2,\\infty)", "\\pi/4", "12", "x^2+1"]
    out["math500"] = [
        (render(reasoning(rng, "en"), "So the answer is", boxed=g), {"gold": g})
        for g in (rng.choice(maths) for _ in range(n))
    ]
    out["gpqa"] = [
        (render(reasoning(rng, "en"), f"Answer: {g}", boxed=g), {"gold": g, "choices": dict(zip("ABCD", "wxyz"))})
        for g in (rng.choice("ABCD") for _ in range(n))
    ]
    out["ccc"] = [
        (
            render(reasoning(rng, "zh"), "综合以上所有判断，最终结果为：" + ("客服违规。" if v else "客服未违规。")),
            {"gold": "violation" if v else "compliant"},
        )
        for v in (rng.random() < 0.5 for _ in range(n))
    ]
    fc = generate(n, seed=seed, langs=("zh", "en"), forms=("open",))
    out["fincalc"] = [
        (render(reasoning(rng, ex["lang"]), ex.get("answer_text", ""), boxed=str(ex["gold"])), ex) for ex in fc
    ]
    return out


# --- the naive way: upstream reward_score_cflue.py, verbatim logic ------------------------------
_BOX, _THINK, _ANS = (
    re.compile(p, re.DOTALL) for p in (r"\\boxed\{(.*?)\}", r"<think>(.*?)</think>", r"<answer>(.*?)</answer>")
)


def upstream_reward(solution: str, gold: str) -> float:
    if len(_THINK.findall(solution)) != 1 or len(answers := _ANS.findall(solution)) != 1:
        return 0.0
    boxes = _BOX.findall(answers[0])
    if not boxes:
        return 0.0
    pick = lambda t: "".join(c for c in "ABCDEFG" if c in t)  # noqa: E731
    return float(pick(boxes[-1]) == pick(gold))


def naive_math_verify(solution: str, gold: str) -> bool:
    from math_verify import parse, verify

    return verify(parse(f"${gold}$"), parse(solution))


def rate(fn, items, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        for resp, ex in items:
            fn(resp, ex)
    return repeat * len(items) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for name, items in cases(args.n).items():
        task = get_task(name)
        for resp, ex in items:  # warm caches (parsed golds) and check every response scores correct
            assert task.score(resp, ex).correct is True, (name, resp[-200:], ex.get("gold"))
        row = {
            "task": name,
            "chars": sum(len(r) for r, _ in items) // len(items),
            "ours_eval": rate(lambda r, e, task=task: task.score(r, e, mode="eval"), items),
            "ours_reward": rate(lambda r, e, task=task: task.score(r, e, mode="reward"), items),
            "floor_one_pass": rate(lambda r, e: r.count("\x00"), items, repeat=20),
        }
        if name == "cflue":
            row["naive_upstream_regex"] = rate(lambda r, e: upstream_reward(r, e["gold"]), items)
        if name == "math500":
            naive_math_verify(*items[0][0:1], items[0][1]["gold"])  # warm-up: sympy's import is not scoring
            row["naive_math_verify_whole"] = rate(lambda r, e: naive_math_verify(r, e["gold"]), items[:50])
        rows.append(row)
    cols = [
        "task",
        "chars",
        "ours_eval",
        "ours_reward",
        "naive_upstream_regex",
        "naive_math_verify_whole",
        "floor_one_pass",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print(
            "| "
            + " | ".join(f"{r[c]:,.0f}" if isinstance(r.get(c), float) else str(r.get(c, "–")) for c in cols)
            + " |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
