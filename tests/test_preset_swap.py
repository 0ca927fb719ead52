"""Changing one part of a preset (issue 25): choosing another optimizer or loss drops the preset's options of
the replaced one (keys the new one lacks, and keys whose default is each component's own, such as the lr;
one note line names them), keeps every option the user typed (an option the new component
lacks stays an error); a preset's feature epochs beyond a shorter run are clipped with a note, a user's own
out-of-range list is an error line that is never cut."""

import pytest
import yaml

from nclab.config import preset_names, read_preset, registry, resolve
from nclab.errors import ConfigError

PRESETS = preset_names()


def default(field):
    return field.get_default(call_default_factory=True)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("section", ["optim", "loss"])
def test_every_preset_takes_every_other_optimizer_and_loss(preset, section, capsys):
    given = read_preset(preset).get(section) or {}
    reg = registry(section)
    current = given.get("name", reg.base.model_fields["name"].default)
    for name in reg.names():
        if name == current:
            continue
        cfg = resolve(None, [f"{section}={name}"], preset=preset)
        takes, had = reg.options(name).model_fields, reg.options(current).model_fields
        assert getattr(cfg, section).name == name
        dropped = [
            k for k in given if k != "name" and (k not in takes or default(takes[k]) != default(had[k]))
        ]
        for key in given.keys() - set(dropped) - {"name"}:  # the preset's options the new one takes: kept
            assert getattr(getattr(cfg, section), key) == given[key]
        err = capsys.readouterr().err
        notes = [line for line in err.splitlines() if line.startswith("note: ")]
        if dropped:
            assert len(notes) == 1 and f"{section}={name} replaces the preset's {current}" in notes[0]
            assert all(f"{section}.{k}" in notes[0] for k in dropped)
        else:
            assert not notes


def test_the_issues_examples_and_typed_options():
    cfg = resolve(None, ["optim=adam"], preset="demo")
    assert cfg.optim.name == "adam" and cfg.optim.weight_decay == 5e-3  # the preset's decay stays
    assert cfg.optim.lr == 1e-3  # sgd's lr went with sgd: adam's own default
    assert resolve(None, ["loss=ce"], preset="zhou2022-cifar10-mse").loss.name == "ce"
    typed = resolve(None, ["optim=adam", "optim.lr=0.01", "optim.betas=[0.8,0.9]"], preset="demo")
    assert typed.optim.lr == 0.01 and tuple(typed.optim.betas) == (0.8, 0.9)
    with pytest.raises(ConfigError, match=r"optim\.momentum: unknown key"):
        resolve(None, ["optim=adam", "optim.momentum=0.9"], preset="demo")


def test_a_yaml_file_swaps_the_presets_component_too(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"optim": {"name": "adam", "lr": 0.002}}))
    cfg = resolve(path, [], preset="demo")
    assert (cfg.optim.name, cfg.optim.lr) == ("adam", 0.002)
    assert "optim.momentum" in capsys.readouterr().err
    path.write_text(yaml.safe_dump({"optim": {"name": "sgd", "momentum": 0.5}}))
    cfg = resolve(path, ["optim=adamw"])  # the command line replaces the file's sgd
    assert cfg.optim.name == "adamw" and "the config file's sgd" in capsys.readouterr().err


def test_preset_feature_epochs_are_clipped_to_a_short_run(capsys):
    cfg = resolve(None, ["epochs=3"], preset="center-fashion-center-2d")
    assert cfg.measure.save_features_at == [1, 2, 3]
    note = capsys.readouterr().err.strip()
    assert note.startswith("note: measure.save_features_at") and "train.epochs=3" in note
    with pytest.raises(ConfigError) as error:
        resolve(None, ["epochs=3", f"measure.save_features_at=[{','.join(map(str, range(2, 400, 3)))}]"])
    message = str(error.value)
    assert (
        "measure.save_features_at" in message and "train.epochs=3" in message and "characters)" not in message
    )
