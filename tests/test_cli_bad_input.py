"""The bad-input matrix: every input a new user might get wrong ends in one `error: ...` line naming the
problem, exit code 2, no traceback, no run directory left behind and nothing written into a damaged run
(cli.main, config, files, runs, train.resume, report)."""

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

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


def config_edit(old: str, new: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        cfg = (run / "config.yaml").read_text()
        assert old in cfg
        (run / "config.yaml").write_text(cfg.replace(old, new, 1))

    return edit


wider_model = config_edit("width: 16", "width: 24")


def foreign_state(run: Path) -> None:
    """A valid safetensors file not written by nclab as the resume state."""
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, run / "checkpoints" / "state.safetensors")


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


def yaml_bytes(data: bytes, command: str = "train") -> Callable[[Path, tuple[Path, Path]], list[str]]:
    """A config (or sweep) file of raw bytes: binary, UTF-16, latin-1, ..."""

    def make(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
        (tmp / "c.yaml").write_bytes(data)
        return [
            command,
            str(tmp / "c.yaml"),
            *([f"out={tmp / 'runs'}", "--quiet"] if command == "train" else []),
        ]

    return make


def resumed(damage: Callable[[Path], None]) -> Callable[[Path, tuple[Path, Path]], list[str]]:
    """`nclab train --resume COPY epochs=4` on a damaged copy of run `a` (3 epochs)."""

    def make(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
        run = copied(tmp, runs)
        damage(run)
        return ["train", "--resume", str(run), "epochs=4", "--quiet"]

    return make


STATE = "checkpoints/state.safetensors"


def edit_header(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Edit the resume state's header metadata in place, as a text editor would (checksum not updated)."""

    def damage(run: Path) -> None:
        path = run / STATE
        data = path.read_bytes()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n])
        change(header["__metadata__"])
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n :])

    return damage


def progress_epoch(epoch: int) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        skeleton = json.loads(meta["state"])
        skeleton["progress"]["epoch"] = epoch
        meta["state"], meta["epoch"] = json.dumps(skeleton), str(epoch)

    return change


def forged(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Edit the resume state's metadata and write it again through nclab (a valid checksum)."""

    def damage(run: Path) -> None:
        from nclab.files import load_tensors, save_tensors

        tensors, meta = load_tensors(run / STATE)
        change(meta)
        kept = {k: v for k, v in meta.items() if k not in ("crc32", "format")}
        save_tensors(run / STATE, tensors, kept, cover_metadata=True)

    return damage


def replaced(rel: str, data: bytes | None) -> Callable[[Path], None]:
    """`rel` replaced by `data`, or by a directory when None."""

    def damage(run: Path) -> None:
        (run / rel).unlink()
        if data is None:
            (run / rel).mkdir()
        else:
            (run / rel).write_bytes(data)

    return damage


def state_of_b(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
    """Run b's resume state (another learning rate) copied into run a."""
    run = copied(tmp, runs)
    shutil.copy(runs[1] / STATE, run / STATE)
    return ["train", "--resume", str(run), "epochs=4", "--quiet"]


def sweep_file(text: str) -> Callable[[Path, tuple[Path, Path]], list[str]]:
    def make(tmp: Path, runs: tuple[Path, Path]) -> list[str]:
        (tmp / "s.yaml").write_text(text)
        return ["sweep", str(tmp / "s.yaml"), "--out", str(tmp / "runs")]

    return make


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
    # files nclab reads (files.read_text / read_yaml): bytes that are not UTF-8 text, a directory, bad trees
    "config binary": (yaml_bytes(b"\x00\x01\xff\xfeseed: 1\n"), "binary"),
    "config UTF-16": (yaml_bytes("seed: 1\n".encode("utf-16")), "UTF-16"),
    "config latin-1": (yaml_bytes("name: caf\u00e9\n".encode("latin-1")), "not UTF-8"),
    "config a directory": (fixed("train", "TMP", "out=TMP/runs"), "is a directory"),
    "yaml list as key": (yaml_file("{[1, 2]: 3}\n"), "is not a name"),
    "yaml mapping as key": (yaml_file("? {a: 1}\n: 2\n"), "is not a name"),
    "yaml number as key": (yaml_file("1: 2\n"), "is not a name"),
    "yaml null as key": (yaml_file("~: 2\n"), "is not a name"),
    "yaml deep list": (yaml_file("seed: " + "[" * 5000 + "]" * 5000 + "\n"), "nested deeper"),
    "yaml deep mapping": (
        yaml_file("".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "x: 1\n"),
        "deeper",
    ),
    "yaml 5000-digit integer": (yaml_file("seed: " + "9" * 5000 + "\n"), "beyond 64 bits"),
    "yaml integer beyond 64 bits": (
        yaml_file("data:\n  per_class: 18446744073709551616\n"),
        "beyond 64 bits",
    ),
    "sweep binary": (yaml_bytes(b"\x89PNG\r\n\x1a\n\x00\x00", "sweep"), "binary"),
    "sweep UTF-16": (yaml_bytes("grid: {seed: [0, 1]}\n".encode("utf-16"), "sweep"), "UTF-16"),
    "sweep a directory": (fixed("sweep", "TMP"), "is a directory"),
    "sweep list key": (sweep_file("grid: {[1]: [0, 1]}\n"), "is not a name"),
    "plot metrics latin-1": (
        damaged(lambda run: (run / "metrics.jsonl").write_bytes(b'{"e": "\xe9"}\n'), "plot"),
        "not UTF-8",
    ),
    "plot metrics a directory": (damaged(replaced("metrics.jsonl", None), "plot"), "is a directory"),
    "measure config UTF-16": (
        damaged(lambda run: (run / "config.yaml").write_bytes("seed: 0\n".encode("utf-16")), "measure"),
        "UTF-16",
    ),
    "measure a checkpoint that is a directory": (
        damaged(replaced(CHECKPOINT_3, None), "measure", "--epochs", "3"),
        "is a directory",
    ),
    # resume against files that do not fit the resume state: the difference named, nothing written
    "resume emptied config": (resumed(write("config.yaml", "")), "is empty"),
    "resume config of comments only": (resumed(write("config.yaml", "# nothing\n")), "is empty"),
    "resume config not UTF-8": (
        resumed(lambda run: (run / "config.yaml").write_bytes(b"seed: 0 # \xe9\n")),
        "not UTF-8",
    ),
    "resume wider model": (resumed(wider_model), "model.width"),
    "resume other optimizer": (resumed(config_edit("name: sgd", "name: adam")), "optim.name"),
    "resume other seed": (resumed(config_edit("seed: 0", "seed: 7")), "seed"),
    "resume another run's state": (state_of_b, "optim.lr"),
    "resume a foreign safetensors state": (resumed(foreign_state), "no checksum"),
    "resume a checkpoint as state": (
        resumed(lambda run: shutil.copy(run / CHECKPOINT_3, run / STATE)),
        "not a resume state",
    ),
    "resume a truncated state": (resumed(truncate(STATE)), "corrupt or truncated"),
    "resume a state that is a directory": (resumed(replaced(STATE, None)), "is a directory"),
    "resume edited progress epoch": (resumed(edit_header(progress_epoch(2))), "checksum mismatch"),
    "resume edited config in the state": (
        resumed(edit_header(lambda m: m.update(config=m["config"].replace("width: 16", "width: 8")))),
        "checksum mismatch",
    ),
    "resume edited format version": (
        resumed(edit_header(lambda m: m.update(format="1"))),
        "checksum mismatch",
    ),
    "resume forged progress epoch": (resumed(forged(progress_epoch(2))), "does not fit its resume state"),
    "resume forged config": (
        resumed(forged(lambda m: m.update(config=m["config"].replace("width: 16", "width: 8")))),
        "model.width",
    ),
    "resume lost metrics lines": (resumed(write("metrics.jsonl", "")), "last measured epoch is 3"),
    "resume duplicated metrics line": (
        resumed(lambda run: (run / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text() * 2)),
        "increasing",
    ),
    "resume status ahead of the state": (
        resumed(write("status.json", '{"state": "failed", "epochs_done": 7}')),
        "status.json says 7",
    ),
    "resume no state but epochs done": (
        resumed(lambda run: (run / STATE).unlink()),
        "beyond the epoch in flight",
    ),
    # run names: one function for every command that creates a run dir
    "name empty": (train("name="), "one directory name"),
    "ufm name absolute": (
        fixed("ufm", "out=TMP/runs", "name=/tmp/nclab-abs", "--quiet"),
        "one directory name",
    ),
    "ufm name dotdot": (fixed("ufm", "out=TMP/runs", "name=../x", "--quiet"), "one directory name"),
    "ufm name empty": (fixed("ufm", "out=TMP/runs", "name=", "--quiet"), "one directory name"),
    "ufm name hidden": (fixed("ufm", "out=TMP/runs", "name=.x", "--quiet"), "one directory name"),
    # values the machine cannot hold (never work: exit 2)
    "lr 1e308": (train("optim.lr=1e308"), "float32"),
    "weight decay 1e300": (train("optim.weight_decay=1e300"), "float32"),
    "adamw lr 3.5e38": (train("optim=adamw", "optim.lr=3.5e38"), "float32"),
    "seed beyond 64 bits": (train("seed=1180591620717411303424"), "seed"),
    "data seed beyond 64 bits": (train("data.seed=18446744073709551617"), "data.seed"),
    "width beyond 64 bits": (train("model.width=18446744073709551617"), "model.width"),
    "width 1e30": (train("model.width=1e30"), "too large"),
    "ufm seed beyond 64 bits": (fixed("ufm", "out=TMP/runs", "seed=18446744073709551617", "--quiet"), "seed"),
    "sweep of 2000 trials without --yes": (
        sweep_file("grid: {seed: " + str(list(range(2000))) + "}\n"),
        "--yes",
    ),
    "sweep of 10^12 random trials": (
        sweep_file("random: {samples: 1000000000000, keys: {optim.lr: {loguniform: [0.001, 0.1]}}}\n"),
        "--yes",
    ),
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
    argv = make(tmp_path, tiny_runs)
    damaged_copy = tmp_path / "copy"
    kept = _files(damaged_copy)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[-1].startswith("error: ") and fragment in lines[-1], err
    assert all(line.startswith("warning: ") for line in lines[:-1]), err  # skipped files are warned about
    assert "Traceback" not in err and len(lines[-1]) < 1000
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # no run directory left behind
    assert sorted(p.name for p in tiny_runs[0].parent.iterdir()) == before
    assert _files(damaged_copy) == kept  # nothing written into a damaged run


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes, but the lock (taken by writers before they check)."""
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".lock"
    }


def test_the_matrix_covers_every_command(tmp_path, tiny_runs):
    (commands,) = [a.choices for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    used = set()
    for i, (make, _) in enumerate(CASES.values()):
        (tmp_path / str(i)).mkdir()
        used.add(make(tmp_path / str(i), tiny_runs)[0])
    assert used == {*commands, "nope"}  # "nope": the unknown command
