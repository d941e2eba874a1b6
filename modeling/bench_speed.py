"""Speed benchmark recipe: `python modeling/bench_speed.py [--quick] [--output_dir reports/speed]`.

A thin face over `gexbert_hf.study.speed` (the same function `gexbert bench-speed` calls).
"""

from transformers import HfArgumentParser

from gexbert_hf.study.speed import SpeedBenchmarkArguments, run_speed_benchmark

if __name__ == "__main__":
    (arguments,) = HfArgumentParser(SpeedBenchmarkArguments).parse_args_into_dataclasses()
    run_speed_benchmark(arguments)
