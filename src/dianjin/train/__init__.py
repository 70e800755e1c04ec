"""Training stages on TRL (issue 4): SFT, GRPO and hard-item mining for RL.

    dianjin sft   CONFIG.yaml [key=value ...]   # dianjin.train.sft:  SFTRunConfig  -> SFTTrainer
    dianjin grpo  CONFIG.yaml [key=value ...]   # dianjin.train.grpo: GRPORunConfig -> GRPOTrainer
    dianjin mine  CONFIG.yaml [key=value ...]   # dianjin.train.mine: MineConfig    -> rl_mined.jsonl

`dianjin.train.common` holds what the stages share: model/tokenizer loading, datasets from the
`sft.jsonl` / `rl.jsonl` formats, batched generation, run-directory logging callbacks and the
CPU demo data. Nothing here is imported until a stage runs, so `import dianjin.train` is cheap.
"""
