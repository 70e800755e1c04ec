"""Training stages on TRL: SFT, GRPO and hard-item mining for RL.

    dianjin sft   CONFIG.yaml [key=value ...]   # dianjin.train.sft:  SFTRunConfig  -> SFTTrainer
    dianjin grpo  CONFIG.yaml [key=value ...]   # dianjin.train.grpo: GRPORunConfig -> GRPOTrainer
    dianjin mine  CONFIG.yaml [key=value ...]   # dianjin.train.mine: MineConfig    -> rl_mined.jsonl

`dianjin.train.common` holds what the stages share: configs, model/tokenizer loading, datasets from
the `sft.jsonl` / `rl.jsonl` formats, resume; `generate` batched generation; `callbacks` the
run-directory logging (metrics, samples, batches); `chat` assistant-only labels for any template. Nothing here is imported until a stage runs, so `import dianjin.train` is cheap.
"""
