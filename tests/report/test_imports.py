"""Layering: plot, compare and visualize read run directories and import nothing of training; the figure
modules share report/style.py and do not import each other; report/ neither measures nor writes arrays;
training imports no figure stack until it draws."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nclab.report

TRAINING = ["nclab.train", "nclab.parts", "nclab.optim", "nclab.losses", "nclab.models", "nclab.remeasure"]
REPORT = Path(nclab.report.__file__).parent


def run(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.slow
def test_report_modules_import_nothing_of_training():
    code = (
        "import sys, nclab, nclab.cli, nclab.report.plots, nclab.report.tables, nclab.report.embed\n"
        f"print([m for m in {TRAINING!r} if m in sys.modules])"
    )
    assert run(code) == "[]"


def imports(path):
    """Every module a file imports, at the top or inside functions."""
    tree = ast.parse(path.read_text())
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return found | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_plots_and_embed_share_style_and_import_neither_each_other_nor_measurement():
    assert "nclab.report.embed" not in imports(REPORT / "plots.py")
    assert "nclab.report.plots" not in imports(REPORT / "embed.py")
    assert {"nclab.report.style"} <= imports(REPORT / "plots.py") & imports(REPORT / "embed.py")
    figures = {"nclab.report.plots", "nclab.report.embed", "nclab.report.lm", "nclab.report.board"}
    assert not imports(REPORT / "style.py") & figures
    for path in REPORT.glob("*.py"):
        assert not imports(path) & {"nclab.remeasure", "nclab.measure", "nclab.train"}, path.name
        assert not {"save_arrays", "save_measured"} & set(re.findall(r"\w+", path.read_text())), path.name


@pytest.mark.slow
def test_training_imports_no_figure_stack_until_it_draws():
    code = (
        "import sys, nclab.train\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or m == 'sklearn.manifold'"
        " or m.startswith('nclab.report.') and m not in ('nclab.report.board', 'nclab.report.groups')))"
    )
    assert run(code) == "[]"
