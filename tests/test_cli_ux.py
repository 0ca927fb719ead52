"""A researcher's first hour (issue 25): logs on a pipe, strict JSON, `nclab compare` columns and the CLI
papercuts (options after flags, --version, train --help, a key given twice, short keys for plot axes,
per-model options in `nclab models`, UFM axes, t-SNE of both splits in one embedding)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nclab
from nclab import jsontext
from nclab.cli import main
from nclab.runs import load
from nclab.state import decode, encode

SRC = str(Path(nclab.__file__).parents[1])
TINY = ["model.width=8", "model.depth=1"]
GAUSSIAN = ["data=gaussian", "data.train_per_class=150", "data.test_per_class=40"]


def strict(text: str) -> object:
    """json.loads that refuses NaN/Infinity (what every other JSON parser does)."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


@pytest.mark.slow
def test_piped_output_has_one_line_per_measured_epoch_and_whole_paths(tmp_path):
    out = tmp_path / ("a-directory-name-long-enough-to-pass-eighty-columns-" * 2)
    cmd = [
        sys.executable,
        "-m",
        "nclab",
        "train",
        f"out={out}",
        "name=r",
        "epochs=4",
        "measure.every=2",
        *TINY,
        *GAUSSIAN,  # a fresh process: Gaussian data loads without scikit-learn's imports
    ]
    env = os.environ | {"PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["2/4", "4/4"]  # measured epochs only
    record = load(out / "r").metrics()[-1]
    assert f"test_acc {record['test_acc']:.4g}" in epochs[-1] and f"nc1 {record['nc1']:.4g}" in epochs[-1]
    assert f"run directory: {out / 'r'}" in lines  # one line, not wrapped
    assert any(line.startswith("figure: ") and line.endswith("nc.png") for line in lines)


def test_every_json_file_is_strict(tiny_runs, tmp_path):
    import shutil

    run = load(shutil.copytree(tiny_runs[0], tmp_path / "a"))
    run.write_jsonl("measure.jsonl", [{"epoch": 1, "nc1": math.nan, "cdnv": math.inf, "nc3": 0.5}])
    files = [p for p in run.path.rglob("*") if p.suffix in (".json", ".jsonl")]
    assert {p.name for p in files} >= {"status.json", "metrics.jsonl", "measure.jsonl"}
    for path in files:
        texts = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        for text in texts:
            strict(text)
    assert strict(run.path.joinpath("measure.jsonl").read_text()) == {
        "epoch": 1,
        "nc1": None,
        "cdnv": None,
        "nc3": 0.5,
    }
    assert jsontext.dumps({"a": [math.nan, (1.0, -math.inf)]}) == '{"a": [null, [1.0, null]]}'


def test_resume_state_skeleton_is_strict_and_keeps_inf():
    state = {"scheduler": {"best": math.inf, "low": -math.inf}, "progress": {"last": {"nc1": 0.25}}}
    tensors, skeleton = encode(state)
    strict(skeleton)
    back = decode(tensors, skeleton)
    assert back["scheduler"]["best"] == math.inf and back["scheduler"]["low"] == -math.inf
    assert back["progress"] == state["progress"]
    assert math.isnan(decode(*encode({"x": math.nan}))["x"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"nclab {nclab.__version__}"


@pytest.mark.slow
def test_options_after_flags(tmp_path):
    fast = [*TINY, "train.figures=false"]
    assert main(["train", "--quiet", f"out={tmp_path}", "name=r", "epochs=1", *fast]) == 0
    assert main(["train", f"out={tmp_path}", "--quiet", "name=s", "--preset", "demo", "epochs=1", *fast]) == 0
    assert (
        load(tmp_path / "s").config().train.epochs == 1
        and load(tmp_path / "r").status()["state"] == "finished"
    )


def test_a_config_typo_is_reported_before_torch_loads():
    code = (
        "import sys; from nclab.cli import main; rc = main(['train', 'optim.lrr=3']); "
        "print(rc, [m for m in ('torch', 'timm', 'torchvision', 'sklearn') if m in sys.modules])"
    )
    env = os.environ | {"PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.strip() == "2 []" and done.stderr.startswith("error: optim.lrr: unknown key")


def test_train_help_lists_the_components(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    lines = capsys.readouterr().out.splitlines()
    listed = {
        line.split(":")[0].strip(): line.split(":")[1]
        for line in lines
        if line.startswith("  ") and ": " in line
    }
    assert "digits" in listed["data"] and "resnet18" in listed["model"]
    assert "focal" in listed["loss"] and "adamw" in listed["optim"]


@pytest.mark.parametrize(
    ("items", "both"),
    [
        (["seed=0", "seed=1"], "seed=0 and seed=1"),
        (["epochs=2", "train.epochs=3"], "epochs=2 and train.epochs=3"),
        (["loss=ce", "loss.name=mse"], "loss=ce and loss.name=mse"),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_an_error_naming_both(items, both, tmp_path, capsys):
    assert main(["train", f"out={tmp_path}", *items]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {both}:") and "given twice" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_models_applies_model_options_to_the_models_that_take_them(capsys):
    assert main(["models", "data=cifar10"]) == 0
    plain = capsys.readouterr().out
    assert main(["models", "data=cifar10", "model.stem=imagenet"]) == 0
    stem = capsys.readouterr().out

    def row(text, name):
        return next(line for line in text.splitlines() if f" {name} " in line)

    assert row(plain, "resnet18") != row(stem, "resnet18")  # the 7x7 stem: another parameter count
    assert (
        "takes no stem" in row(stem, "mlp") and row(plain, "mlp").split()[:4] == row(stem, "mlp").split()[:4]
    )
    assert main(["models", "model.stme=imagenet"]) == 2
    assert "model.stme: no model takes this key" in capsys.readouterr().err
