"""Benchmarks run by the `gexbert` command (`benchmark`, `bench-speed`): library code, so the CLI and the recipes
in `modeling/` call the same functions."""
