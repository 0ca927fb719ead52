import pytest

from nclab.config import RunConfig, parse_override, resolve
from nclab.errors import ConfigError


def test_defaults_then_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim: {lr: 0.2, momentum: 0.5}\nmodel: {width: 64}\nseed: 3\n")
    cfg = resolve(f, ["optim.lr=0.05", "model.width=512", "epochs=7", "head.bias=false"])
    assert cfg.optim.lr == 0.05 and cfg.optim.momentum == 0.5  # override beats file, file beats default
    assert cfg.model.width == 512 and cfg.seed == 3 and cfg.train.epochs == 7 and cfg.head.bias is False
    assert cfg.optim.weight_decay == RunConfig().optim.weight_decay


def test_section_name_shortcut_and_preset():
    cfg = resolve(None, ["loss=ce", "model=mlp"], preset="demo")
    assert cfg.loss.name == "ce" and cfg.model.name == "mlp" and cfg.optim.weight_decay == 5e-3


def test_yaml_scalars():
    assert parse_override("a=0.5") == ("a", 0.5)
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=null") == ("a", None)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("name=my-run") == ("name", "my-run")


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        (["loss=nope"], ["loss.name", "'nope'", "ce"]),
        (["optim.lr=fast"], ["optim.lr", "number", "'fast'"]),
        (["model.widht=3"], ["model.widht", "unknown key", "width", "depth"]),
        (["foo=1"], ["foo", "unknown key", "seed", "optim"]),
        (["optim.schedule=linear"], ["optim.schedule", "step", "cosine"]),
        (["optim.lr=-1"], ["optim.lr", "greater than 0"]),
        (["lr"], ["key=value"]),
    ],
)
def test_bad_input_is_one_clear_line(override, fragments):
    with pytest.raises(ConfigError) as err:
        resolve(None, override)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(bad)
    with pytest.raises(ConfigError, match="preset 'nope'"):
        resolve(preset="nope")


def test_round_trip_through_yaml(tmp_path):
    cfg = resolve(None, ["optim.lr=0.01", "seed=5"])
    f = tmp_path / "c.yaml"
    f.write_text(cfg.to_yaml())
    assert resolve(f) == cfg
