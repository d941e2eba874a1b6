"""The paper's study, built on the library: `gexbert benchmark` (three tasks and the attention analysis against
tuned baselines), `gexbert bench-speed`, `gexbert demo`, the dataset build-scale measurement and their reports.

It imports the library (`gexbert_hf.*`); the library never imports it. It is a subpackage, not top-level scripts,
because the wheel must carry the code the `gexbert` command runs; `modeling/`, `train/` and `data_scripts/` at the
repository root stay thin runnable faces and configs over it.
"""
