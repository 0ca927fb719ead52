"""Layering: what the light commands import (config validation, `nclab options`, `presets`, `--help`), the
layer order of every module (docs/architecture.md, "Layers"), no import circle, file and function sizes."""

import ast
import subprocess
import sys
from pathlib import Path

HEAVY = ["torch", "timm", "torchvision", "sklearn", "scipy", "matplotlib", "PIL", "ray"]


def _imported(code: str) -> list[str]:
    """The heavy top-level packages in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])


def test_validating_a_config_imports_no_model_dataset_or_plotting_library():
    code = (
        "from nclab.config import resolve, stored_tree, validate_any\n"
        "cfg = resolve(None, ['model=vit', 'data=gaussian', 'data.classes=3', 'loss=focal', 'optim=adamw'])\n"
        "assert (cfg.model.width, cfg.loss.gamma, cfg.optim.lr) == (192, 3.0, 1e-3)\n"
        "validate_any(stored_tree(cfg.model_dump()))\n"
        "resolve(preset='zhu2021-cifar10-sgd')"
    )
    assert _imported(code) == []


def test_options_presets_and_help_import_no_model_dataset_or_plotting_library():
    code = (
        "import contextlib, io\n"
        "from nclab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    for argv in (['options'], ['options', 'model', 'vit'], ['options', 'data'], ['presets'],\n"
        "                 ['presets', 'demo']):\n"
        "        assert main(argv) == 0, argv\n"
        "    with contextlib.suppress(SystemExit):\n"
        "        main(['--help'])\n"
        "assert 'model.head_dim' in out.getvalue() and 'usage: nclab' in out.getvalue()"
    )
    assert _imported(code) == []


# ---------------------------------------------------------------------------------- the import graph
# Every module of src/nclab in one layer, lowest first; a module imports only from its own layer or lower
# ones (function-level imports included), and no import circle exists. A new module must be placed here.
LAYERS = [
    (
        "foundation",
        [
            "nclab.errors",
            "nclab.files",
            "nclab.jsontext",
            "nclab.threads",
            "nclab.registry",
            "nclab.plugins",
            "nclab.presets",
        ],
    ),
    ("components", ["nclab.components"]),  # registries, options, declared builders (pydantic only)
    ("config", ["nclab.config"]),
    ("metrics", ["nclab.metrics", "nclab.distributed"]),
    ("parts", ["nclab.data", "nclab.models", "nclab.losses", "nclab.optim", "nclab.state"]),
    ("runs", ["nclab.runs", "nclab.parts", "nclab.step", "nclab.measure", "nclab.remeasure", "nclab.output"]),
    ("report", ["nclab.report"]),
    ("drivers", ["nclab.train", "nclab.ufm", "nclab.sweep", "nclab.sweep_tune"]),
    ("cli", ["nclab", "nclab.__main__", "nclab.cli", "nclab.cli_info", "nclab.cli_report"]),
]
MAX_FILE_LINES, MAX_FUNCTION_LINES = 450, 80
SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "nclab").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The nclab modules `path` imports anywhere in its body (`from a import b` counts a.b if a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}  # fmt: skip
    return {m for m in found if m in modules}


def _layer(module: str) -> int:
    """The layer of a module: its longest matching prefix in LAYERS."""
    best = max(
        ((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
         if module == p or module.startswith(f"{p}.")),
        default=None,
    )  # fmt: skip
    assert best is not None, f"{module} is in no layer of tests/test_layers.py: place it"
    return best[1]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while not component or v not in component:
                component.add(stack.pop())
            on.difference_update(component)
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_every_module_imports_only_its_own_layer_or_lower_ones():
    graph = _graph()
    upward = [
        f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
        for m, targets in sorted(graph.items())
        for t in sorted(targets)
        if _layer(t) > _layer(m)
    ]
    assert upward == []


def test_the_import_graph_has_no_circle():
    assert _cycles(_graph()) == []


def test_the_checker_finds_circles_and_upward_imports():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _layer("nclab.config.run") == 2 and _layer("nclab.components.data") == 1
    assert _layer("nclab.cli_info") == len(LAYERS) - 1 and _layer("nclab.ufm.theory") == 7


def test_no_source_file_or_function_is_oversized():
    over = set()
    for path in _modules().values():
        name = str(path.relative_to(SRC))
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            over.add(name)
        for node in ast.walk(ast.parse(text)):
            function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if function and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                over.add(f"{name}:{node.name}")
    assert over == set(), "over 450 lines per file or 80 per function"
