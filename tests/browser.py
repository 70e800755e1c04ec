"""Headless Chromium (Debian's `chromium`) for the report tests: load a page, collect its console."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium)"
)


def browse(url: str, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """(stdout, console messages): run headless Chromium on `url`; every page console line counts."""
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra, url],
        capture_output=True,
        text=True,
        timeout=90,
    )
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def page_errors(dom: str, console: list[str]) -> list[str]:
    """Everything that says the page did not load cleanly."""
    problems = list(console)
    m = re.search(r'data-js-errors="([^"]*)"', dom)
    if m:
        problems.append(f"script error: {m.group(1)}")
    if 'data-ready="1"' not in dom:
        problems.append("the page's script did not finish")
    return problems
