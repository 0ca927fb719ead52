"""Every metric a run can write is named on figures by a short mathtext symbol from the metric table that
matplotlib can set; family members and keys without a symbol still get a label; whole config values read as
integers."""

import json
import subprocess
import sys

import pytest
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser

from nclab.metrics import table
from nclab.report.groups import value_text
from nclab.report.style import caption_line, label


def in_tree():
    """{key: symbol} of every key nclab itself declares (a fresh process: tests may register more)."""
    code = (
        "import json, nclab.metrics.table as t\n"
        "print(json.dumps({k: m.symbol for k, m in t.METRICS.items()}))"
    )
    return json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )


SYMBOLS = in_tree()


@pytest.mark.parametrize("key", list(SYMBOLS))
def test_every_registered_key_has_a_symbol_that_renders(key):
    symbol = SYMBOLS[key]
    assert symbol.count("$") >= 2 and len(symbol) <= 60  # math, and short
    width, height, *_ = MathTextParser("path").parse(symbol, 72, FontProperties(size=7))
    assert 0 < width < 120 and height > 0  # points: fits a 1.7 in panel side at 7 pt


def test_symbols_tell_metrics_apart():
    symbols = [s for k, s in SYMBOLS.items() if not k.startswith("*/")]  # a layer's key: its base's symbol
    assert len(SYMBOLS) > 60 and len(set(symbols)) == len(symbols)


def test_labels_of_families_layers_and_undeclared_symbols(monkeypatch):
    assert label("nc1") == "$\\mathcal{NC}_1$"
    assert label("score_pos_q05") == "$s_{i,y_i}$ (q05)" and label("bias_mean") == "$b_k$ (mean)"
    assert label("layer3/nc1") == "$\\mathcal{NC}_1$ (layer3)"
    monkeypatch.setattr(table, "METRICS", dict(table.METRICS))
    table.register_metric("my_margin", "geometry", "mean logit margin", "my paper")
    assert label("my_margin") == "my_margin"
    assert caption_line("my_margin") == "my_margin (my_margin): mean logit margin [my paper]"
    assert caption_line("nc1") == "$\\mathcal{NC}_1$ (nc1): tr(Sigma_W Sigma_B^+) / K [all seeds]"


def test_whole_values_read_as_integers():
    assert [value_text(v) for v in (32.0, 0.5, 3, "ce", None, 1e-3)] == [
        "32",
        "0.5",
        "3",
        "ce",
        "None",
        "0.001",
    ]
