"""Layering: what the light commands import (config validation, `nclab options`, `presets`, `--help`)."""

import subprocess
import sys

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
