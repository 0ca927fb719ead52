"""A user's own loss in a file outside the tree, loaded by `--plugin FILE` (or $NCLAB_PLUGINS), used from the
command line by train, options, plot, compare, measure and --resume; the run records the plugin, so the
commands that read the run load it again without the flag. A missing plugin is one error line."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

import nclab
from nclab.cli import main
from nclab.runs import load
from tests.warm import Warm

SRC = str(Path(nclab.__file__).parents[1])
PLUGIN = '''
import torch.nn.functional as F
from pydantic import Field

from nclab.config import LossConfig
from nclab.losses import LOSSES, Loss


class PluginCEOptions(LossConfig):
    """cross-entropy of z / T, from a plugin file"""

    temperature: float = Field(1.0, gt=0, description="T")


class PluginCE(Loss):
    def __init__(self, num_classes, temperature, **kw):
        super().__init__(num_classes, **kw)
        self.temperature = temperature

    def sample_loss(self, logits, features, targets):
        return F.cross_entropy(logits / self.temperature, targets, reduction="none")


@LOSSES.register("plugin_ce", PluginCEOptions)
def plugin_ce(cfg, num_classes, feature_dim):
    return PluginCE(num_classes, cfg.temperature, reduction=cfg.reduction, feature_decay=cfg.feature_decay)
'''
TINY = ["model.width=8", "model.depth=1", "train.figures=false", "--quiet"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user") / "my_losses.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def warm():
    """Fresh processes for the user's next commands, forked from one that imported the third-party stack
    (tests/warm.py): nothing of nclab and no plugin is imported in them yet."""
    env = {k: v for k, v in os.environ.items() if k != "NCLAB_PLUGINS"} | {"PYTHONPATH": SRC}
    server = Warm(["torch._dynamo", "torch.utils.tensorboard", "matplotlib.pyplot", "sklearn.datasets"], env)
    yield server
    server.close()


def nclab_cli(warm: Warm, folder: Path, *argv: str, env: dict[str, str] | None = None):
    """`python -m nclab ARGV` in a fresh process (no plugin imported yet), as a user's next command."""
    child = warm.start(["-m", "nclab", *argv], folder, env)
    out, err = child.communicate(timeout=300)
    return subprocess.CompletedProcess(argv, child.returncode, out, err)


@pytest.mark.slow
def test_a_plugin_loss_from_the_command_line(plugin, warm, tmp_path, capsys):
    out = f"out={tmp_path}"
    train = ["train", "loss=plugin_ce", "loss.temperature=2", "epochs=2", "name=p", out, *TINY]
    assert main(["--plugin", str(plugin), *train]) == 0
    run = load(tmp_path / "p")
    assert run.config().loss.temperature == 2.0
    assert yaml.safe_load((run.path / "config.yaml").read_text())["plugins"] == [str(plugin.resolve())]
    assert main(["options", "loss", "plugin_ce"]) == 0
    assert "loss.temperature" in capsys.readouterr().out

    # fresh processes: the run's config loads the plugin again; no flag, no environment variable
    resumed = nclab_cli(warm, tmp_path, "train", "--resume", str(run.path), "epochs=3", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert [r["epoch"] for r in load(run.path).metrics()] == [1, 2, 3]
    for argv in (
        ["compare", str(run.path)],
        ["plot", str(run.path)],
        ["measure", str(run.path), "--epochs", "3"],
    ):
        done = nclab_cli(warm, tmp_path, *argv)
        assert done.returncode == 0, (argv, done.stderr)
    listed = nclab_cli(warm, tmp_path, "options", "loss", env={"NCLAB_PLUGINS": str(plugin)})
    assert listed.returncode == 0 and "plugin_ce" in listed.stdout
    assert "plugin_ce" not in nclab_cli(warm, tmp_path, "options", "loss").stdout


def test_a_missing_plugin_is_one_error_line(tmp_path, capsys):
    assert main(["options", "--plugin", "no_such_module_xyz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: plugin no_such_module_xyz cannot be imported") and err.count("\n") == 1
    assert main(["--plugin", str(tmp_path / "absent.py"), "options"]) == 2
    assert "absent.py cannot be imported" in capsys.readouterr().err


@pytest.mark.slow
def test_a_ufm_run_records_its_plugin_loss(plugin, warm, tmp_path):
    """`nclab ufm` with a plugin loss records the plugin like training, so a fresh `compare` reads the run."""
    argv = ["ufm", "loss=plugin_ce", "iterations=3", "K=3", "d=4", "n=2", "name=u", f"out={tmp_path}"]
    assert main(["--plugin", str(plugin), *argv, "--quiet"]) == 0
    assert yaml.safe_load((tmp_path / "u" / "config.yaml").read_text())["plugins"] == [str(plugin.resolve())]
    done = nclab_cli(warm, tmp_path, "compare", str(tmp_path / "u"))
    assert done.returncode == 0 and "| u |" in done.stdout, done.stderr
