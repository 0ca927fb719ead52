import pytest

from nclab.config import RunConfig, parse_override, resolve
from nclab.errors import ConfigError, ReadError


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
        (
            ["loss=ce", "loss.gamma=2"],
            ["loss.gamma", "unknown key", "gamma is an option of focal", "options loss ce"],
        ),
        (["optim=adam", "optim.momentum=0.5"], ["optim.momentum", "momentum is an option of sgd"]),
        (["data.gaussian.classes=3"], ["data.gaussian: moved", "data.classes", "data.train_per_class"]),
        (["data.multilabel.single=3"], ["data.multilabel: moved", "data.single"]),
        (
            ["model=mlp", "model.stem=imagenet"],
            ["model.stem", "unknown key", "stem is an option of resnet18"],
        ),
        (
            ["model=resnet18", "model.depth=4"],
            ["model.depth", "resnet18's options", "options model resnet18"],
        ),
        (["model=vit", "model.depth=[2, 2]"], ["model.depth", "valid integer"]),
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
    with pytest.raises(ReadError, match="not found"):  # files.read_text: one reader for every file
        resolve(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ReadError, match="not valid YAML"):
        resolve(bad)
    with pytest.raises(ConfigError, match="preset 'nope'"):
        resolve(preset="nope")


def test_round_trip_through_yaml(tmp_path):
    cfg = resolve(None, ["optim.lr=0.01", "seed=5"])
    f = tmp_path / "c.yaml"
    f.write_text(cfg.to_yaml())
    assert resolve(f) == cfg


def test_each_component_validates_its_own_options():
    cfg = resolve(None, ["loss=focal", "loss.gamma=2", "data=gaussian", "data.classes=4"])
    assert cfg.loss.gamma == 2.0 and cfg.data.classes == 4 and cfg.data.train_per_class == 500
    assert not hasattr(resolve(None, ["loss=ce"]).loss, "gamma")
    vit = resolve(None, ["model=vit", "model.head_dim=64"]).model
    assert (vit.head_dim, vit.width, vit.depth, vit.qkv_bias) == (
        64,
        192,
        6,
        True,
    )  # the model's own defaults
    assert not hasattr(resolve(None, ["model=mlp"]).model, "stem")
    assert resolve(None, ["model=wide_resnet50"]).model.width == 2.0  # WideResNet50-2 unless told otherwise


@pytest.mark.parametrize(("optim", "lr"), [("sgd", 0.05), ("adam", 1e-3), ("adamw", 1e-3), ("lbfgs", 0.1)])
def test_each_optimizer_has_its_own_lr_default(optim, lr):
    assert resolve(None, [f"optim={optim}"]).optim.lr == lr
    assert resolve(None, [f"optim={optim}", "optim.lr=0.5"]).optim.lr == 0.5


def test_component_options_round_trip_through_yaml(tmp_path):
    cfg = resolve(None, ["loss=focal", "loss.gamma=1.5", "optim=adamw", "optim.betas=[0.8, 0.9]"])
    f = tmp_path / "c.yaml"
    f.write_text(cfg.to_yaml())
    assert resolve(f) == cfg and "gamma: 1.5" in f.read_text()


def test_options_listing(capsys):
    from nclab.cli import main

    assert main(["options"]) == 0
    assert "loss: bce, ce, center, focal" in capsys.readouterr().out
    assert main(["options", "optim", "adamw"]) == 0
    out = capsys.readouterr().out
    assert "optim.lr" in out and "0.001" in out and "optim.betas" in out and "momentum" not in out
    assert main(["options", "loss", "nope"]) == 2
    assert "loss='nope' is not one of" in capsys.readouterr().err
    assert main(["options", "head"]) == 2
