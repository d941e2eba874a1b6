"""Training: the Accelerate pretraining loop, Trainer glue for fine-tuning, checkpoints and model presets."""
