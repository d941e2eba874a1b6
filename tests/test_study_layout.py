"""The two layers: the study (gexbert_hf/study) imports the library; the library never imports the study."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gexbert_hf

PACKAGE = Path(gexbert_hf.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the gexbert_hf modules a file imports (relative imports resolved)."""
    package = ".".join(("gexbert_hf", *path.relative_to(PACKAGE).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("gexbert_hf")}


def test_no_library_module_imports_the_study():
    library = [path for path in PACKAGE.rglob("*.py") if "study" not in path.relative_to(PACKAGE).parts]
    offenders = {str(path.relative_to(PACKAGE)): sorted(name for name in _imported_modules(path)
                                                        if name.startswith("gexbert_hf.study"))
                 for path in library}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_importing_the_library_and_the_cli_loads_no_study_module():
    code = ("import sys, gexbert_hf, gexbert_hf.cli, gexbert_hf.inference, gexbert_hf.training.finetune; "
            "print(sorted(name for name in sys.modules if name.startswith('gexbert_hf.study')))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
