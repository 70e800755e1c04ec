"""Task registry: one module per benchmark, looked up by name (never an if/elif chain).

from dianjin.tasks import get_task
verdict = get_task("cflue").score(response, example)
"""

from __future__ import annotations

from dianjin.tasks.base import DataError, Example, Judge, Task, Verdict

TASKS: dict[str, Task] = {}
ALIASES: dict[str, str] = {}


def register(*aliases: str):
    """Class decorator: instantiate the task and register it under its name and aliases."""

    def deco(cls: type[Task]) -> type[Task]:
        if cls.name in TASKS:
            raise ValueError(f"task {cls.name!r} registered twice")
        TASKS[cls.name] = cls()
        for alias in aliases:
            ALIASES[alias.lower()] = cls.name
        return cls

    return deco


def get_task(name: str) -> Task:
    """The task registered as `name` (or an alias such as a verl data_source); KeyError lists all."""
    key = (name or "").strip().lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        valid = ", ".join(sorted(TASKS) + sorted(ALIASES))
        raise KeyError(f"unknown task {name!r}; known tasks and aliases: {valid}")
    return TASKS[key]


# Importing the modules registers the tasks.
from dianjin.tasks import ccc, cflue, cflue_oe, fincalc, finqa, gpqa, math500  # noqa: E402,F401

__all__ = ["TASKS", "DataError", "Example", "Judge", "Task", "Verdict", "get_task", "register"]
