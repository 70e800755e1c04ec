"""`dianjin report`: the HTML + Markdown report, its PNG plots, the error browser, and the page opened
in headless Chromium (Debian's `chromium`): it must load with no console message and no script
error, its filters must work from the URL hash, and a screenshot is taken. The Chromium check is
itself tested by planting a script error in a copy of the page.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import pytest
from browser import browse, needs_chromium, page_errors
from evalkit import Script, eval_args, rows_of, write_data
from fake_openai import FakeOpenAI, last_user

from dianjin.cli import main as cli
from dianjin.eval import report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>document.title='pwned'</script>"


def write_metrics(run: Path, steps: int, *, grpo: bool = True) -> None:
    run.mkdir(parents=True)
    with open(run / "metrics.jsonl", "w", encoding="utf-8") as f:
        for s in range(1, steps + 1):
            row = {"step": s, "loss": 2 / math.sqrt(s), "learning_rate": 1e-6}
            if grpo:
                row.update(
                    {
                        "reward": s / steps,
                        "rewards/dianjin_reward/mean": s / (2 * steps),
                        "format_rate": min(1.0, 2 * s / steps),
                        "completions/mean_length": 300.0 + s,
                        "kl": s * 1e-4,
                        "accuracy": s / steps,
                    }
                )
            f.write(json.dumps(row) + "\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """An eval run (one answer carries a <script> tag), an SFT run and a GRPO run, under one folder."""
    root = tmp_path_factory.mktemp("report")
    data = write_data(root / "data")
    script = Script(data, tasks=("cflue", "ccc"))

    def hostile(req: dict) -> dict:
        reply = dict(script(req))
        if "表外业务" in last_user(req):  # a wrong answer whose text must be shown, not run
            reply = {"content": f"<think>分析{HOSTILE}</think><answer>\\boxed{{B}} {HOSTILE}</answer>"}
        return reply

    with FakeOpenAI(script=hostile) as srv:
        assert cli(eval_args(srv, data, root / "runs" / "评测-eval", tasks=("cflue", "ccc"))) == 0
    write_metrics(root / "runs" / "sft", 30, grpo=False)
    write_metrics(root / "runs" / "grpo", 120)
    return root


@pytest.fixture(scope="module")
def built(runs: Path) -> Path:
    out = runs / "out"
    assert cli(["report", str(runs / "runs"), "--out", str(out)]) == 0
    return out


def test_report_files_and_plots(built: Path):
    for name in (
        "index.html",
        "report.md",
        "accuracy.png",
        "curve_loss.png",
        "curve_reward.png",
        "curve_format_rate.png",
        "curve_completion_length.png",
        "curve_kl.png",
        "curve_accuracy.png",
    ):
        path = built / name
        assert path.is_file(), name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000, name
    md = (built / "report.md").read_text(encoding="utf-8")
    assert "![accuracy per task](accuracy.png)" in md and "DianJin-R1-7B (paper)" in md and "![kl](curve_kl.png)" in md
    assert re.search(r"\| runs/评测-eval \| CFLUE \| 3 \| 0 \| 0 \| 0 \|", md)  # wrong/unverified/error/correct counts


def test_error_browser_lists_wrong_samples_escaped(runs: Path, built: Path):
    page = (built / "index.html").read_text(encoding="utf-8")
    assert "<meta charset='utf-8'>" in page and "WenQuanYi Micro Hei" in page  # UTF-8 and a CJK font stack
    assert HOSTILE not in page and html_escaped(HOSTILE) in page  # model output is shown, never run
    rows = rows_of(runs / "runs" / "评测-eval", "cflue") | rows_of(runs / "runs" / "评测-eval", "ccc")
    wrong = {r["id"] for r in rows.values() if r["correct"] is not True}
    right = {r["id"] for r in rows.values() if r["correct"] is True}
    listed = set(re.findall(r"<code>([^<]+)</code>", page))
    assert listed == wrong and not listed & right
    assert "客服未违规" in page or "客服违规" in page  # Chinese text as is, not escaped to entities


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


@pytest.mark.parametrize(
    "metrics,patterns,want",
    [
        (
            [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}],
            ("loss",),
            {"loss": ([1.0, 2.0], [2.0, 1.0])},
        ),  # plain key
        ([{"loss": 3.0}, {"loss": 2.0}], ("loss",), {"loss": ([0.0, 1.0], [3.0, 2.0])}),  # no step: the row index
        (
            [{"step": 1, "rewards/a/mean": 0.5, "rewards/a/std": 0.1}],
            ("rewards/*/mean",),
            {"rewards/a/mean": ([1.0], [0.5])},
        ),  # wildcard, one segment
        (
            [{"step": 1, "kl": float("nan")}, {"step": 2, "kl": True}, {"step": 3, "kl": "x"}],
            ("kl",),
            {},
        ),  # NaN, bool, text skipped
        ([{"step": 1, "rewards/a/b/mean": 1.0}], ("rewards/*/mean",), {}),  # "*" does not cross "/"
    ],
)
def test_curve_series(metrics, patterns, want):
    assert report.curve_series(metrics, patterns) == want


@pytest.mark.parametrize("cjk", [True, False])  # with the installed CJK font, and with none (labels replaced)
def test_plots_with_chinese_run_names_miss_no_glyph(runs: Path, tmp_path: Path, monkeypatch, cjk: bool):
    if not cjk:
        monkeypatch.setattr(report, "_cjk_font", lambda: None)
    elif report._cjk_font() is None:
        pytest.skip("no CJK font installed (e.g. Debian's fonts-wqy-microhei)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        report.make_report([runs / "runs" / "评测-eval", runs / "runs" / "grpo"], tmp_path / "r")
    assert (tmp_path / "r" / "accuracy.png").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (["nonexistent-dir"], "not a directory"),  # a typo
        (["EMPTY"], "no summary.json"),  # a folder with no runs
        (["RUNS", "--paper-rows", "GPT-5"], "unknown paper rows"),  # not a row of the paper's table
    ],
)
def test_report_cli_errors(runs: Path, tmp_path: Path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    args = [{"EMPTY": str(tmp_path / "empty"), "RUNS": str(runs / "runs")}.get(a, a) for a in args]
    assert cli(["report", *args, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_training_only_report_has_curves_and_no_browser(runs: Path, tmp_path: Path):
    report.make_report([runs / "runs" / "sft"], tmp_path / "t")
    page = (tmp_path / "t" / "index.html").read_text(encoding="utf-8")
    assert "curve_loss.png" in page and "Error browser" not in page and not (tmp_path / "t" / "accuracy.png").exists()
    assert not (tmp_path / "t" / "curve_reward.png").exists()  # SFT logs no reward


# --- headless Chromium -----------------------------------------------------------------------------------
@needs_chromium
def test_report_loads_in_chromium_without_errors(built: Path, tmp_path: Path):
    dom, console = browse((built / "index.html").as_uri(), tmp_path, "--dump-dom")
    assert page_errors(dom, console) == []
    shot = tmp_path / "report.png"
    browse(
        (built / "index.html").as_uri() + "#verdict=wrong&open=1",
        tmp_path,
        "--window-size=1280,2400",
        f"--screenshot={shot}",
    )
    assert shot.read_bytes()[:8] == PNG_MAGIC and shot.stat().st_size > 20_000


@needs_chromium
def test_filters_from_the_url_hash_hide_other_samples(built: Path, tmp_path: Path):
    dom, console = browse((built / "index.html").as_uri() + "#task=ccc&verdict=wrong", tmp_path, "--dump-dom")
    assert page_errors(dom, console) == []
    shown = re.findall(r'<details class="sample"[^>]*data-task="(\w+)" data-verdict="(\w+)"(?! hidden)[^>]*>', dom)
    hidden = re.findall(r'<details class="sample"[^>]*hidden[^>]*>', dom)
    assert shown and set(shown) == {("ccc", "wrong")} and hidden
    assert re.search(rf'id="f-count"[^>]*>{len(shown)} / {len(shown) + len(hidden)}<', dom)


@needs_chromium
@pytest.mark.parametrize(
    "plant",
    [
        "<script>undefinedFunction();</script>",  # a runtime error
        "<script>var x = ;</script>",  # a syntax error
        "<script>console.error('broken');</script>",  # an explicit console error
    ],
)
def test_chromium_check_catches_a_planted_error(built: Path, tmp_path: Path, plant: str):
    page = (built / "index.html").read_text(encoding="utf-8").replace("</body>", plant + "</body>")
    bad = tmp_path / "bad.html"
    bad.write_text(page, encoding="utf-8")
    dom, console = browse(bad.as_uri(), tmp_path, "--dump-dom")
    assert page_errors(dom, console) != []


def test_a_cjk_font_installed_after_matplotlib_cached_its_list_is_found(monkeypatch):
    from matplotlib import font_manager

    from dianjin.eval import plots

    now = font_manager.FontManager()  # the system's fonts as they are now, not matplotlib's cached list
    cjk_files = {f.fname for f in now.ttflist if f.name in plots.CJK_FONTS}
    if not cjk_files:
        pytest.skip("no CJK font installed (e.g. Debian's fonts-wqy-microhei)")
    manager = font_manager.fontManager
    stale = [f for f in manager.ttflist if f.fname not in cjk_files]  # the list as cached before the install
    monkeypatch.setattr(manager, "ttflist", stale)
    assert plots.cjk_font() in plots.CJK_FONTS  # found again among the system's font files
