"""The library's import direction (README, Architecture): each layer imports only the layers before it, so the model
file stays loadable as remote code and nothing in the library reaches up into training, the commands or the study."""

from __future__ import annotations

import ast
from pathlib import Path

import gexbert_hf

PACKAGE = Path(gexbert_hf.__file__).parent
LAYERS = [
    {"configuration_gexbert", "errors_gexbert"}, {"checkpoint_gexbert"}, {"modeling_gexbert"},
    {"expression_input_gexbert"}, {"levels_gexbert", "inputs_gexbert"}, {"tokenization_gexbert"}, {"errors"},
    {"threads", "outputs", "loading", "metrics", "input_scale", "nested_arguments"}, {"data"}, {"inference"},
    {"fast_inference", "onnx_export", "panel_design"}, {"hub"}, {"training"}, {"commands"}, {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
NOT_LIBRARY = {"study", "tasks", "benchmarks", "reports"}  # the paper's study, wherever it lives


def _package_imports(path: Path) -> set[str]:
    """The top-level package members a module imports (relative imports, and absolute `gexbert_hf.` ones)."""
    depth = len(path.relative_to(PACKAGE).parts) - 1
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = (node.module or "").split(".") if node.level - 1 >= depth else None
            if parts is None:  # relative inside its own folder: the folder's layer
                continue
            found.add(parts[0] or node.names[0].name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gexbert_hf."):
            found.add(node.module.split(".")[1])
    return found


def test_each_library_module_imports_only_earlier_layers():
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        member = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if member in NOT_LIBRARY or member == "__init__" or path.name in ("reports.py", "scale.py"):
            continue
        for imported in _package_imports(path) - {member, "__init__", "__version__"}:
            if imported in NOT_LIBRARY or RANK.get(imported, len(LAYERS)) >= RANK[member]:
                offences.append(f"{path.relative_to(PACKAGE)} imports {imported}")
    assert not offences, offences


def test_every_import_in_the_package_resolves_lazy_ones_too():
    """An import inside a function (kept lazy for start-up time) fails only when that path runs: a module moved or
    renamed leaves such imports stale without any other test noticing. Each of the package's imports of itself must
    name a module and an attribute that exist."""
    import importlib

    stale = []
    for path in sorted(PACKAGE.rglob("*.py")):
        package = ".".join(("gexbert_hf", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.level or (node.module or "").startswith("gexbert_hf")):
                continue
            name = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                stale.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name} ({error})")
                continue
            for alias in node.names:
                if not hasattr(module, alias.name) and importlib.util.find_spec(f"{name}.{alias.name}") is None:
                    stale.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}.{alias.name}")
    assert not stale, stale
