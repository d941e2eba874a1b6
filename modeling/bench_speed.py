"""Speed benchmark recipe: `python modeling/bench_speed.py [--quick] [--output_dir reports/speed]`.

A thin face over `gexbert_hf.study.speed` (the same function `gexbert bench-speed` calls). The imputation levers of
issue 22, one short section at a time: `python modeling/bench_speed.py levers --section accuracy|speed|command|
profile|onnx|render [--output_dir reports/speed_release/levers]` (see gexbert_hf/study/speed/levers.py).
"""

import sys

from transformers import HfArgumentParser

from gexbert_hf.study.speed import SpeedBenchmarkArguments, run_speed_benchmark

if __name__ == "__main__":
    if sys.argv[1:2] == ["levers"]:
        from gexbert_hf.study.speed.levers import LeverArguments, run_levers

        (lever_arguments,) = HfArgumentParser(LeverArguments).parse_args_into_dataclasses(sys.argv[2:])
        run_levers(lever_arguments)
    else:
        (arguments,) = HfArgumentParser(SpeedBenchmarkArguments).parse_args_into_dataclasses()
        run_speed_benchmark(arguments)
