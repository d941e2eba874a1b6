"""The README's examples are tests: every ```python block runs, in order, in one namespace, in a fresh directory.

A block preceded by `<!-- skip-test -->` is left out; keep that for what truly cannot run here (an upload).
The blocks run in a subprocess so that the package comes from this checkout and the remote-code cache is private.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"
SKIP_MARKER = "<!-- skip-test -->"
RUNNER = """
import json, sys, time
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__readme__"}
for block in blocks:
    started = time.perf_counter()
    # padded so that a traceback names the README's own line
    exec(compile("\\n" * (block["line"] - 1) + block["code"], sys.argv[2], "exec"), namespace)
    print(f"README.md:{block['line']} ok in {time.perf_counter() - started:.1f} s", flush=True)
"""


@dataclass
class Block:
    line: int  # README line of the block's first code line
    code: str


def python_blocks(text: str) -> list[Block]:
    """Every ```python block of a Markdown text, except one whose fence follows a `<!-- skip-test -->` line."""
    blocks, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            previous = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
            if previous != SKIP_MARKER:
                blocks.append(Block(index + 2, "\n".join(lines[index + 1 : end]) + "\n"))
            index = end
        index += 1
    return blocks


def run_blocks(blocks: list[Block], tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `blocks` in one fresh interpreter, cwd `tmp_path/repo` (so `../shared` is `tmp_path/shared`), offline."""
    workdir = tmp_path / "repo"
    workdir.mkdir(exist_ok=True)
    (tmp_path / "blocks.json").write_text(json.dumps([asdict(block) for block in blocks]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json"), str(README)], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_python_blocks_are_found_in_order_with_their_lines_and_skips():
    text = "intro\n```python\na = 1\n```\n```bash\nls\n```\n<!-- skip-test -->\n\n```python\nupload()\n```\n```python\nb = a\n```\n"
    assert python_blocks(text) == [Block(3, "a = 1\n"), Block(14, "b = a\n")]


def test_readme_examples_run(tmp_path):
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4  # Quick start, pretraining from Python, remote code, Trainer fine-tuning
    result = run_blocks(blocks, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count(" ok in ") == len(blocks), result.stdout
    assert (tmp_path / "repo" / "my-gexbert" / "tokenization_gexbert.py").is_file()


def test_quick_start_reads_the_shared_layout_when_present(shared_data_dir, tmp_path):
    (tmp_path / "shared").symlink_to(shared_data_dir.parent, target_is_directory=True)
    check = Block(1, "print('shapes', expression.shape, len(train_df), len(test_df), outputs.level_logits.shape)\n")
    result = run_blocks([python_blocks(README.read_text())[0], check], tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "shapes (973, 1577) 778 195 torch.Size([8, 1578, 32])" in result.stdout
