"""The light core imports and scores without torch, transformers or trl."""

import subprocess
import sys

CORE = [
    "dianjin.answer",
    "dianjin.tasks",
    "dianjin.rewards",
    "dianjin.verl_reward",
    "dianjin.score",
    "dianjin.llm.client",
    "dianjin.eval.run",  # the evaluation client: torch only once a local model is loaded
    "dianjin.eval.local",
    "dianjin.config",
    "dianjin.rundir",
    "dianjin.cli",
]


def test_core_imports_without_heavy_libraries():
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        "from dianjin.tasks import TASKS\n"
        "assert {'cflue', 'cflue_oe', 'finqa', 'math500', 'gpqa', 'ccc', 'fincalc'} <= set(TASKS), TASKS\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'peft') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "dianjin.cli", "--help"], capture_output=True, text=True, check=True)
    assert "score" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "dianjin.cli", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'nope'" in bad.stderr


def test_evaluation_does_not_import_the_data_pipeline():
    """Prompts and scoring come from the task layer: `dianjin.eval` never imports `dianjin.data`
    (not even inside a function), and importing the evaluation loads none of it."""
    import ast
    from pathlib import Path

    import dianjin.eval

    for path in sorted(Path(dianjin.eval.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module else []
            else:
                continue
            bad = [n for n in names if n.startswith("dianjin.data")]
            assert not bad, f"{path.name}:{node.lineno} imports {bad}"
    code = (
        "import sys\nimport dianjin.eval.run, dianjin.eval.specs, dianjin.tasks.ccc_agents\n"
        "print(','.join(m for m in sys.modules if m.startswith('dianjin.data')) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"
