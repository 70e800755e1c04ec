"""`dianjin.malloc`: the environment each CPU allocator gives a training child, and a real preload."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dianjin.malloc import ALLOCATORS, KEEP_ENV, allocator_env, find_library

FALLBACK: dict[str, str] = {}  # marks a case whose environment is the allocator's fallback's


@pytest.mark.parametrize(
    "name,env,files,want,note",
    [
        ("glibc", {}, [], {}, None),  # glibc's defaults: nothing added
        ("glibc-keep", {}, [], KEEP_ENV, None),  # the three glibc settings
        (
            "glibc-keep",
            {"MALLOC_TOP_PAD_": "1"},
            [],
            {**KEEP_ENV, "MALLOC_TOP_PAD_": "1"},
            None,
        ),  # a value the user set wins
        ("tcmalloc", {}, ["libtcmalloc_minimal.so.4"], {"LD_PRELOAD": "LIB/libtcmalloc_minimal.so.4"}, None),
        (
            "tcmalloc",
            {},
            ["libtcmalloc.so.4"],
            {"LD_PRELOAD": "LIB/libtcmalloc.so.4"},
            None,
        ),  # full gperftools when the minimal one is absent
        (
            "tcmalloc",
            {"LD_PRELOAD": "/x/libasan.so"},
            ["libtcmalloc_minimal.so.4"],
            {"LD_PRELOAD": "LIB/libtcmalloc_minimal.so.4:/x/libasan.so"},
            None,
        ),  # goes in front of an existing preload, which stays
        (
            "tcmalloc",
            {"LD_PRELOAD": "LIB/libtcmalloc_minimal.so.4"},
            ["libtcmalloc_minimal.so.4"],
            {"LD_PRELOAD": "LIB/libtcmalloc_minimal.so.4"},
            None,
        ),  # already preloaded: not twice
        (
            "tcmalloc",
            {},
            [],
            FALLBACK,
            "apt-get install libtcmalloc-minimal4",
        ),  # missing: its fallback, and what to install
        ("jemalloc", {}, ["libjemalloc.so.2"], {"LD_PRELOAD": "LIB/libjemalloc.so.2"}, None),
        (
            "jemalloc",
            {},
            ["libtcmalloc_minimal.so.4"],
            FALLBACK,
            "apt-get install libjemalloc2",
        ),  # another library is not it
        (
            "glibc-mmap",
            {},
            [],
            {"MALLOC_MMAP_THRESHOLD_": KEEP_ENV["MALLOC_MMAP_THRESHOLD_"]},
            None,
        ),  # the threshold alone
    ],
)
def test_allocator_env(tmp_path: Path, name: str, env: dict, files: list[str], want: dict, note: str | None):
    if want is FALLBACK:
        want = ALLOCATORS[ALLOCATORS[name].fallback].env
    for f in files:
        (tmp_path / f).write_bytes(b"")
    env = {k: v.replace("LIB", str(tmp_path)) for k, v in env.items()}
    got = allocator_env(name, env, dirs=(str(tmp_path),))
    assert env == {k: v.replace("LIB", str(tmp_path)) for k, v in want.items()}
    if note is None:
        assert got is None
    else:
        assert got is not None and note in got and f"{name} is not installed" in got
        assert f"training runs on {ALLOCATORS[name].fallback}" in got


def test_every_fallback_is_an_allocator_without_a_library():
    for name, a in ALLOCATORS.items():
        assert a.fallback in ALLOCATORS and not ALLOCATORS[a.fallback].libraries, name


def test_unknown_allocator_is_named():
    with pytest.raises(
        ValueError, match="unknown allocator 'mimalloc'; known: glibc, glibc-mmap, glibc-keep, tcmalloc"
    ):
        allocator_env("mimalloc", {})


@pytest.mark.parametrize("name", [n for n, a in ALLOCATORS.items() if a.libraries])
def test_a_preloaded_allocator_is_the_childs_malloc(name: str):
    """Where the system has the library, a child started with the environment really maps it."""
    if find_library(ALLOCATORS[name].libraries) is None:
        pytest.skip(f"{name} is not installed here")
    env: dict[str, str] = {}
    assert allocator_env(name, env) is None
    maps = subprocess.run(
        [sys.executable, "-c", "print(open('/proc/self/maps').read())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(env["LD_PRELOAD"]).name in maps
