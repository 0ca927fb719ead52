"""Layering: plot, compare and visualize read run directories and import nothing of training."""

import subprocess
import sys

import pytest

TRAINING = ["nclab.train", "nclab.parts", "nclab.optim", "nclab.losses", "nclab.models", "nclab.remeasure"]


@pytest.mark.slow
def test_report_modules_import_nothing_of_training():
    code = (
        "import sys, nclab, nclab.cli, nclab.report.plots, nclab.report.tables, nclab.report.embed\n"
        f"print([m for m in {TRAINING!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
