"""Running a script where gexbert_hf cannot be imported: the hub remote-code path a user without the package takes."""

import subprocess
import sys
import textwrap

BLOCK_GEXBERT = """
import importlib.abc, sys
class BlockGexbert(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "gexbert_hf" or name.startswith("gexbert_hf."):
            raise ModuleNotFoundError(f"blocked: {name}")
sys.meta_path.insert(0, BlockGexbert())
try:
    import gexbert_hf
    raise SystemExit("gexbert_hf is importable: the test would prove nothing")
except ModuleNotFoundError:
    pass
"""


def run_without_package(script: str, tmp_path) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python where `gexbert_hf` cannot be imported (remote code only), offline."""
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", BLOCK_GEXBERT + textwrap.dedent(script)], capture_output=True,
                          text=True, env=env, timeout=180, cwd=tmp_path)
