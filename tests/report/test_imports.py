"""Layering: plot, compare and visualize read run directories and import nothing of training; the figure
modules share report/style.py and do not import each other; report/ neither measures nor writes arrays;
training imports no figure stack until it draws."""

import ast
import json
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


# what the digits MLP needs none of: vision and text libraries, t-SNE, the figure stack (drawn at the end)
UNNEEDED = ("timm", "torchvision", "transformers", "tokenizers", "sklearn.manifold", "matplotlib")
DIGITS_RUN = """
import glob, json, sys
import nclab.train
from nclab.cli import main

def loaded():
    return sorted(m for m in sys.modules if m.startswith({unneeded!r}) or m.startswith("nclab.report.")
                  and m not in ("nclab.report.board", "nclab.report.groups"))

seen = {{"import": loaded()}}
nclab.train._finish = lambda *args: seen.update(trained=loaded())  # the end-of-run figures are not drawn
main(["train", "epochs=1", "model.width=16", "model.depth=1", "train.threads=1", "out={out}"])
main(["measure", *glob.glob("{out}/*")])
seen["measured"] = loaded()
print(json.dumps(seen))
"""


@pytest.mark.slow
def test_training_and_measuring_the_digits_mlp_import_no_unneeded_library_until_it_draws(tmp_path):
    seen = json.loads(run(DIGITS_RUN.format(unneeded=UNNEEDED, out=tmp_path)).splitlines()[-1])
    assert seen == {"import": [], "trained": [], "measured": []}
    (run_dir,) = tmp_path.iterdir()  # it trained and measured epoch 1
    for name in ("metrics.jsonl", "measure.jsonl"):
        assert [json.loads(line)["epoch"] for line in (run_dir / name).open()] == [1], name
