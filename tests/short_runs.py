"""Settings shared by the tests that pretrain: a 12-step run that logs, evaluates and checkpoints often enough for
resume and pruning to be exercised in seconds."""

from gexbert_hf.training.pretrain import PretrainingOptions


def short_pretraining_options(**overrides) -> PretrainingOptions:
    values = {"max_steps": 12, "batch_size": 16, "learning_rate": 2e-3,
              "logging_steps": 2, "eval_steps": 6, "save_steps": 4, "save_total_limit": 2, "progress": False}
    values.update(overrides)
    return PretrainingOptions(**values)
