"""Speed benchmark recipe, a thin face over the `gexbert` command (flags or one JSON file, the same thread set-up and
clean errors): `python modeling/bench_speed.py [--quick] [--output_dir reports/speed]` is `gexbert bench-speed`.

The imputation levers of issue 22, one short section at a time: `python modeling/bench_speed.py levers --section
accuracy|speed|command|onnx|profile|render [--output_dir reports/speed_release/levers]` is `gexbert bench-levers`
(see gexbert_hf/study/speed/levers.py).
"""

import sys

from gexbert_hf.cli import main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["levers"]:
        raise SystemExit(main(["bench-levers", *arguments[1:]]))
    raise SystemExit(main(["bench-speed", *arguments]))
