"""The `dianjin` command: a registry of subcommands, each the `main(argv)` of one stage module.

    dianjin score FILE.jsonl [--mode eval|reward]
    dianjin merge fsdp CKPT_DIR --base BASE --out OUT [--verify]
    dianjin serve MODEL_DIR [--engine auto|vllm|transformers]

Stage modules are imported only when their command runs, so `dianjin score` never imports torch.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help). Each module defines `main(argv: list[str]) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("dianjin.score", "score saved responses offline (eval or reward mode)"),
    "merge": ("dianjin.model.merge", "merge FSDP/DCP shards or a LoRA adapter into a HuggingFace model"),
    "serve": ("dianjin.model.serve", "serve a model over an OpenAI-compatible API (vLLM or transformers)"),
    "sft": ("dianjin.train.sft", "supervised fine-tuning with TRL on sft.jsonl (full or LoRA, resumable)"),
    "grpo": ("dianjin.train.grpo", "GRPO with TRL and the dianjin rewards on rl.jsonl (resumable)"),
    "mine": ("dianjin.train.mine", "hard-item mining: keep questions whose pass rate is strictly inside a band"),
    "eval": (
        "dianjin.eval.cli",
        "evaluate an endpoint or a local model on the benchmarks: eval run | rescore | compare",
    ),
    "report": ("dianjin.eval.report", "static HTML + Markdown report: accuracy vs the paper, training curves, errors"),
    "data": ("dianjin.data.build", "build verified reasoning data: dianjin data build CONFIG.yaml [key=value ...]"),
    "demo": ("dianjin.demo", "the whole pipeline in one command: data, SFT, mining, GRPO, merge, serve, eval, report"),
    "export": (
        "dianjin.train.export_cmd",
        "hand off to verl (GRPO parquet + run_grpo.sh) or LLaMA-Factory (SFT yaml + sft.sh)",
    ),
    "model": (
        "dianjin.model.gguf",
        "import a pretrained model from a GGUF file (or the packaged SmolLM2-135M) as a HF dir",
    ),
}


def usage() -> str:
    lines = ["usage: dianjin COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `dianjin COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from dianjin import __version__

        print(f"dianjin {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"dianjin: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[cmd][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
