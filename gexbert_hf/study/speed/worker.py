"""One memory point in a fresh process: `python -m gexbert_hf.study.speed.worker '<json spec>'` prints its
measurements as the last line of JSON (what `run_memory_point` reads)."""

import json
import sys

from ..reports import to_jsonable
from .memory import memory_worker

if __name__ == "__main__":
    print(json.dumps(to_jsonable(memory_worker(json.loads(sys.argv[1])))))
