"""The bad-input matrix: every input a new user might get wrong ends in one `error: ...` line naming the
problem, exit code 2, no traceback, and no run directory left behind (cli.main, config, runs, report)."""

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from nclab.cli import _parser, main
from nclab.data import DATASETS
from nclab.losses import LOSSES
from nclab.models import MODELS
from nclab.optim import OPTIMIZERS

LONG = "1" * 100_000
CHECKPOINT_3 = "checkpoints/epoch_0003.safetensors"


def train(*args: str) -> Callable[[Path, tuple[Path, Path]], list[str]]:
    """`nclab train` with out=<tmp>/runs and epochs=2 unless the case sets them (a key given twice is an
    error of its own)."""
    given = {a.split("=")[0] for a in args}

    def make(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
        defaults = {"out": f"out={tmp / 'runs'}", "epochs": "epochs=2"}
        return ["train", *(v for k, v in defaults.items() if k not in given), *args, "--quiet"]

    return make


def yaml_file(text: str) -> Callable[[Path, tuple[Path, Path]], list[str]]:
    def make(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
        (tmp / "c.yaml").write_text(text)
        return ["train", str(tmp / "c.yaml"), f"out={tmp / 'runs'}", "--quiet"]

    return make


def copied(tmp: Path, runs: tuple[Path, Path]) -> Path:
    """A copy of the tiny 3-epoch run `a` (checkpoints 1-3, features and scores) to damage."""
    return Path(shutil.copytree(runs[0], tmp / "copy"))


def damaged(damage: Callable[[Path], None], *command: str) -> Callable[[Path, tuple[Path, Path]], list[str]]:
    def make(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
        run = copied(tmp, runs)
        damage(run)
        return [command[0], str(run), *command[1:]]

    return make


def random_body(run: Path) -> None:
    """Checkpoint 3 with its header intact and every tensor byte random."""
    path = run / "checkpoints" / "epoch_0003.safetensors"
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start:] = bytes((i * 97 + 13) % 256 for i in range(len(data) - start))
    path.write_bytes(bytes(data))


def write(rel: str, text: str) -> Callable[[Path], None]:
    return lambda run: (run / rel).write_text(text)


def wider_model(run: Path) -> None:
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg.replace("width: 16", "width: 24"))


def no_metrics(run: Path) -> None:
    (run / "metrics.jsonl").write_text("")


def only_checkpoint_3(run: Path) -> None:
    for p in (run / "checkpoints").glob("epoch_000[12].safetensors"):
        p.unlink()


def truncate(rel: str) -> Callable[[Path], None]:
    def cut(run: Path) -> None:
        path = run / rel
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return cut


def with_file(name: str, *args: str) -> Callable[[Path, tuple[Path, Path]], list[str]]:
    def make(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
        (tmp / "afile").write_text("x")
        return [a.replace("FILE", str(tmp / "afile")) for a in train(*args)(tmp, runs)]

    return make


def existing(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
    return ["train", f"out={runs[0].parent}", "name=a", "--quiet"]


def fixed(*argv: str) -> Callable[[Path, tuple[Path, Path]], list[str]]:
    return lambda tmp, runs: [a.replace("RUN", str(runs[0])).replace("TMP", str(tmp)) for a in argv]


CASES = {
    # values out of range or of the wrong type
    "seed true": (train("seed=true"), "seed"),
    "seed negative": (train("seed=-1"), "seed"),
    "seed 2^32": (train("seed=4294967296"), "seed"),
    "data seed negative": (train("data.seed=-5"), "data.seed"),
    "seed text": (train("seed=abc"), "seed"),
    "lr inf": (train("optim.lr=inf"), "finite"),
    "weight decay inf": (train("optim.weight_decay=inf"), "finite"),
    "loss scale inf": (train("loss=mse", "loss.scale=inf"), "finite"),
    "bias mean nan": (train("head.bias_mean=nan"), "finite"),
    "lr text": (train("optim.lr=abc"), "optim.lr"),
    "lr zero": (train("optim.lr=0"), "optim.lr"),
    "lr negative": (train("optim.lr=-1"), "optim.lr"),
    "huge value": (train(f"optim.lr={LONG}x"), "100003 characters"),
    "epochs zero": (train("epochs=0"), "train.epochs"),
    "epochs text": (train("epochs=abc"), "train.epochs"),
    "batch size zero": (train("train.batch_size=0"), "batch_size"),
    "momentum negative": (train("optim.momentum=-1"), "momentum"),
    "nesterov without momentum": (train("optim.nesterov=true", "optim.momentum=0"), "nesterov"),
    "milestones unsorted": (train("optim.milestones=[0.9,0.5]"), "milestones"),
    "warmup with plateau": (train("optim.warmup_epochs=2", "optim.schedule=plateau"), "warmup"),
    "schedule unknown": (train("optim.schedule=nope"), "optim.schedule"),
    "test fraction one": (train("data.test_fraction=1"), "test_fraction"),
    "val fraction one": (train("data.val_fraction=1"), "val_fraction"),
    "val fraction 0.999": (train("data.val_fraction=0.999"), "without train images"),
    "smoothing > 1": (train("loss=label_smoothing", "loss.smoothing=2"), "loss.smoothing: Input should be"),
    "gamma negative": (train("loss=focal", "loss.gamma=-1"), "loss.gamma: Input should be"),
    "measure every zero": (train("measure.every=0"), "measure.every"),
    "save_every zero": (train("train.save_every=0"), "save_every"),
    "features at bad epochs": (train("measure.save_features_at=[0,-3,99999]"), "[0, -3, 99999]"),
    "bias sign 2": (train("head.bias_sign=2"), "bias_sign"),
    "device tpu": (train("train.device=tpu"), "train.device"),
    "depth zero": (train("model.depth=0"), "depth"),
    "width negative": (train("model.width=-1"), "width"),
    "width fractional for mlp": (train("model.width=1.5"), "whole number"),
    "per class zero": (train("data.per_class=0"), "per_class"),
    "imbalance ratio < 1": (train("data.imbalance_ratio=0.5"), "imbalance_ratio"),
    # unknown names and keys
    "loss unknown": (train("loss=nope"), "loss.name"),
    "model unknown": (train("model=nope"), "model.name"),
    "optim unknown": (train("optim=nope"), "optim.name"),
    "data unknown": (train("data=nope"), "data.name"),
    "key unknown": (train("model.nope=1"), "unknown key"),
    "section unknown": (train("nope.x=1"), "nope"),
    "key into a value": (train("optim.lr.x=1"), "optim.lr"),
    "preset unknown": (lambda tmp, runs: ["train", "--preset", "nope", f"out={tmp / 'runs'}"], "preset"),
    "option unknown": (fixed("train", "--nope"), "unrecognized"),
    "command unknown": (fixed("nope"), "invalid choice"),
    # names and paths
    "name too long": (train("name=" + "x" * 300), "255 bytes"),
    "name with dots": (train("name=../../x"), "one directory name"),
    "name absolute": (train("name=/abs/path"), "one directory name"),
    "name dot": (train("name=."), "one directory name"),
    "name dotdot": (train("name=.."), "one directory name"),
    "out is a file": (with_file("out", "out=FILE"), "is a file"),
    "out below a file": (with_file("out", "out=FILE/runs"), "out="),
    "out unwritable": (train("out=/sys/nclab-runs"), "out=/sys/nclab-runs"),
    "data root a file (multi-label)": (with_file("root", "data=mlab_mnist", "data.root=FILE"), "a file"),
    "run exists": (existing, "--resume"),
    # config files
    "config missing": (fixed("train", "TMP/nope.yaml"), "not found"),
    "two config files": (fixed("train", "a.yaml", "b.yaml"), "one config file"),
    "override without =": (fixed("train", "optim.lr"), "not found"),
    "yaml key twice": (yaml_file("optim:\n  lr: 0.1\noptim:\n  momentum: 0.5\n"), "appears twice"),
    "yaml nested key twice": (yaml_file("optim:\n  lr: 0.1\n  lr: 0.2\n"), "appears twice"),
    "yaml garbage": (yaml_file("a: [1,\n"), "not valid YAML"),
    "yaml a list": (yaml_file("- 1\n- 2\n"), "mapping"),
    "yaml section a value": (yaml_file("optim: 3\n"), "optim"),
    # combinations that do not fit
    "lbfgs with clipping": (train("optim=lbfgs", "train.clip_grad_norm=1"), "clip_grad_norm"),
    "no head with ce": (train("head.kind=none"), "head.kind=none"),
    "convnet on flat rows": (train("model=resnet18"), "resnet18"),
    "augment flat rows": (train("data.augment=crop_flip"), "uint8"),
    "mixup odd batch": (train("data.mix=mixup", "train.batch_size=127"), "even"),
    # --resume
    "resume a missing dir": (fixed("train", "--resume", "TMP/nope"), "not a run directory"),
    "resume with an override": (fixed("train", "--resume", "RUN", "optim.lr=0.1"), "only epochs=N"),
    "resume with a config file": (fixed("train", "--resume", "RUN", "x.yaml"), "only epochs=N"),
    "resume a finished run": (fixed("train", "--resume", "RUN"), "nothing to resume"),
    "resume to fewer epochs": (fixed("train", "--resume", "RUN", "epochs=2"), "train.epochs=2"),
    "resume epochs zero": (fixed("train", "--resume", "RUN", "epochs=0"), "whole number"),
    # measure, plot, compare, visualize, runs on bad run dirs
    "measure a missing dir": (fixed("measure", "TMP/nope"), "not a run directory"),
    "measure a bad split": (fixed("measure", "RUN", "--split", "nope"), "--split"),
    "measure a missing epoch": (fixed("measure", "RUN", "--epochs", "99"), "no checkpoint for epochs [99]"),
    "measure epochs text": (fixed("measure", "RUN", "--epochs", "abc"), "integers"),
    "measure random bytes behind a header": (
        damaged(lambda run: (random_body(run), only_checkpoint_3(run)), "measure"),
        "could be read",
    ),
    "measure a truncated checkpoint": (
        damaged(lambda run: (truncate(CHECKPOINT_3)(run), only_checkpoint_3(run)), "measure"),
        "could be read",
    ),
    "measure garbage config": (damaged(write("config.yaml", "{{{ not yaml"), "measure"), "config.yaml"),
    "measure config of another model": (damaged(wider_model, "measure"), "does not fit the model"),
    "measure config with a bad value": (damaged(write("config.yaml", "seed: -1\n"), "measure"), "seed"),
    "plot a missing dir": (fixed("plot", "TMP/nope"), "not a run directory"),
    "plot no metrics": (damaged(no_metrics, "plot"), "no metrics yet"),
    "plot bad kind": (fixed("plot", "RUN", "--kind", "nope"), "--kind"),
    "plot unknown metric": (fixed("plot", "RUN", "--kind", "curves", "--metrics", "nope"), "nope"),
    "plot scores missing epoch": (fixed("plot", "RUN", "--kind", "scores", "--epochs", "99"), "99"),
    "plot corrupt middle line": (damaged(write("metrics.jsonl", "{}\nnot json\n{}\n"), "plot"), "line 2"),
    "compare a missing dir": (fixed("compare", "TMP/nope"), "not a run directory"),
    "compare bad format": (fixed("compare", "RUN", "--format", "xls"), "--format"),
    "visualize bad method": (fixed("visualize", "RUN", "--method", "umap"), "--method"),
    "visualize missing epoch": (fixed("visualize", "RUN", "--epochs", "99"), "99"),
    "runs a missing dir": (fixed("runs", "TMP/nope"), "not a directory"),
    "runs an empty dir": (fixed("runs", "TMP"), "no run directories"),
    "data info unknown": (fixed("data", "info", "nope"), "data.name"),
    "models bad shape": (fixed("models", "--input-shape", "a,b"), "--input-shape"),
    # the other commands
    "sweep a missing file": (fixed("sweep", "TMP/nope.yaml"), "not found"),
    "ufm K one": (fixed("ufm", "K=1", "out=TMP/runs", "--quiet"), "K: Input should be"),
    "ufm key unknown": (fixed("ufm", "nope=1", "out=TMP/runs", "--quiet"), "nope: unknown key"),
    "presets unknown": (fixed("presets", "nope"), "preset 'nope' is unknown"),
    "options section unknown": (fixed("options", "nope"), "choose a section"),
    "options component unknown": (fixed("options", "loss", "nope"), "loss='nope'"),
}
# every registered component refuses a key it does not take, naming its own options
CASES |= {
    f"{section} {name} key unknown": (train(f"{section}={name}", f"{section}.nope=1"), f"{section}={name}'s")
    for section, registry in (("data", DATASETS), ("model", MODELS), ("loss", LOSSES), ("optim", OPTIMIZERS))
    for name in registry.names()
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_one_error_line_exit_2(tmp_path, tiny_runs, capsys, case):
    make, fragment = CASES[case]
    before = sorted(p.name for p in tiny_runs[0].parent.iterdir())
    assert main(make(tmp_path, tiny_runs)) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[-1].startswith("error: ") and fragment in lines[-1], err
    assert all(line.startswith("warning: ") for line in lines[:-1]), err  # skipped files are warned about
    assert "Traceback" not in err and len(lines[-1]) < 1000
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # no run directory left behind
    assert sorted(p.name for p in tiny_runs[0].parent.iterdir()) == before


def test_the_matrix_covers_every_command(tmp_path, tiny_runs):
    (commands,) = [a.choices for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    used = set()
    for i, (make, _) in enumerate(CASES.values()):
        (tmp_path / str(i)).mkdir()
        used.add(make(tmp_path / str(i), tiny_runs)[0])
    assert used == {*commands, "nope"}  # "nope": the unknown command
