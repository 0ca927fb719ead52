"""`nclab compare`: one row per setting (seeds: mean, std, n) or per run, differing config keys, best test
accuracy (best-validation rule)."""

import csv
import io
import json

import numpy as np

from nclab.cli import main
from nclab.report.tables import compare_rows
from nclab.runs import load


def test_compare_csv_has_one_row_per_run(tiny_runs, capsys):
    assert main(["compare", *map(str, tiny_runs), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["run"] for r in rows] == ["a", "b"]
    assert [float(r["optim.lr"]) for r in rows] == [0.05, 0.1]
    assert "model.width" not in rows[0]  # equal in both runs
    a = load(tiny_runs[0]).metrics()
    assert float(rows[0]["nc1"]) == a[-1]["nc1"]
    assert float(rows[0]["best_test_acc"]) == max(r["test_acc"] for r in a)


def test_compare_markdown(tiny_runs, capsys):
    assert main(["compare", *map(str, tiny_runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| run |") and "| optim.lr |" in lines[0]
    assert lines[1].startswith("| --- |") and lines[2].startswith("| a |")


def test_best_test_accuracy_follows_validation(tmp_path):
    run_dir = tmp_path / "v"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: v\n")
    records = [
        {"epoch": 1, "val_acc": 0.5, "test_acc": 0.9},
        {"epoch": 2, "val_acc": 0.8, "test_acc": 0.7},
        {"epoch": 3, "val_acc": 0.6, "test_acc": 0.95},
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    row = compare_rows([load(run_dir)])[0]
    assert row["best_test_acc"] == 0.7 and row["best_epoch"] == 2


def test_seeds_are_one_row_with_mean_and_std(make_run, capsys):
    from tests.report.conftest import KEYS, curve

    runs = [make_run(f"s{s}", [f"seed={s}", "optim.lr=0.1"], offset=s) for s in (0, 1, 2)]
    runs.append(make_run("other", ["optim.lr=0.2"], offset=5))
    rows = compare_rows(runs)
    summary = [(r["run"], r["seeds"], r["optim.lr"]) for r in rows]
    assert summary == [("s0 + s1 + s2", 3, 0.1), ("other", 1, 0.2)]
    finals = np.array([curve(KEYS.index("nc1"), s, 5) for s in (0, 1, 2)])
    assert rows[0]["nc1"] == finals.mean() and rows[0]["nc1:std"] == finals.std(ddof=1)
    assert rows[1]["nc1"] == curve(KEYS.index("nc1"), 5, 5) and rows[1]["nc1:std"] is None
    assert "seed" not in rows[0]
    assert main(["compare", *(str(r.path) for r in runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| seeds |" in lines[0] and "nc1:std" not in lines[0]
    assert f"{finals.mean():.4g} ± {finals.std(ddof=1):.2g}" in lines[2]
    assert main(["compare", "--each-seed", "--format", "csv", *(str(r.path) for r in runs)]) == 0
    each = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["run"] for r in each] == ["s0", "s1", "s2", "other"] and each[1]["seed"] == "1"


def test_runs_table_statuses_epochs_and_a_torn_line(tiny_runs, tmp_path, capsys):
    """`nclab runs DIR`: finished runs, a killed one (status running, lock free) whose metrics.jsonl ends in a
    torn line (ignored with a warning), an interrupted one; directories without config.yaml are not runs."""
    import shutil

    from nclab.report.tables import run_rows

    for name in ("a", "b"):
        shutil.copytree(tiny_runs[0].parent / name, tmp_path / name)
    status = json.loads((tmp_path / "b" / "status.json").read_text())
    (tmp_path / "b" / "status.json").write_text(json.dumps(status | {"state": "running", "epochs_done": 2}))
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "nc1"')
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    interrupted = status | {"state": "interrupted", "epochs_done": 1}
    (tmp_path / "c" / "status.json").write_text(json.dumps(interrupted))
    (tmp_path / "figures").mkdir()
    rows = run_rows(tmp_path)
    assert [(r["run"], r["status"], r["epochs"]) for r in rows] == [
        ("a", "finished", "3/3"), ("b", "killed", "2/3"), ("c", "interrupted", "1/3")
    ]  # fmt: skip
    last = load(tiny_runs[0]).metrics()[-1]
    assert rows[0]["test_acc"] == last["test_acc"] and rows[0]["nc1"] == last["nc1"] and rows[0]["MB"] > 0
    assert capsys.readouterr().err.count("torn last line") == 1
    assert main(["runs", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "killed" in out and "interrupted" in out and err.count("torn last line") == 1
    (tmp_path / "c" / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    assert main(["runs", str(tmp_path)]) == 0  # one unreadable run keeps its row, the others are listed
    out, err = capsys.readouterr()
    assert "finished" in out and "killed" in out and "interrupted" in out
    assert next(line for line in err.splitlines() if "c/metrics.jsonl" in line).startswith("warning: ")


def test_component_options_are_columns_but_not_legend_keys(make_run):
    """A loss's own option (focal's gamma) is a compare column, None for the losses without it; the legend
    says `loss=focal` alone unless the option's value differs between the settings that have it."""
    from nclab.report.groups import group_runs

    runs = [make_run(name, [f"loss={name}"], epochs=1) for name in ("ce", "focal", "mse")]
    assert [g.label for g in group_runs(runs)] == ["loss=ce", "loss=focal", "loss=mse"]
    rows = compare_rows(runs)
    assert [(r["loss.name"], r["loss.gamma"], r["loss.scale"]) for r in rows] == [
        ("ce", None, None),
        ("focal", 3.0, None),
        ("mse", None, 1.0),
    ]
    runs.append(make_run("focal2", ["loss=focal", "loss.gamma=2"], epochs=1))
    labels = [g.label for g in group_runs(runs)]
    assert labels == ["loss=ce", "loss=focal, loss.gamma=3", "loss=mse", "loss=focal, loss.gamma=2"]
