"""Models in and out: GGUF import (`gguf`), the tiny test/demo model (`tiny`), checkpoint merge
(`checkpoints` reads FSDP/DCP shards, `merge` writes HF safetensors; LoRA merge), serving over an
OpenAI-compatible API (`serve`), the dtype generation loads a model in (`precision`), and the
config keys older transformers read (`legacy_config`).
Needs the `train` extra (torch, transformers) when a function runs; importing is cheap.
"""
