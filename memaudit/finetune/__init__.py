"""Parameter-efficient fine-tuning with block masks (full, SV-DIFF, DiffFit, attention, LoRA) and mitigations."""
