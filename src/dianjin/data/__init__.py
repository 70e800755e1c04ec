"""The data pipeline: sources → filter → convert → distill/verify → CCC multi-agent →
decontamination → export → stats, driven by `dianjin data build CONFIG.yaml` (`dianjin.data.build`)."""
