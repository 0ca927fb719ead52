"""Every preset of the studies resolves, says what it reproduces and builds its full model (feature dim
and parameter count pinned); one preset per data format and model trains on tiny data in the real on-disk
formats (a slice of Debian's Fashion-MNIST where installed; MNIST IDX, CIFAR pickles and SVHN format-1 trees
written here); `nclab presets` lists the studies."""

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from torchvision import datasets

from nclab.cli import main
from nclab.config import preset_about, preset_names, read_preset, resolve
from nclab.data import DATASET_INFO
from nclab.data.vision import DEBIAN_FASHION_MNIST, read_idx
from nclab.models import describe
from nclab.presets import STUDIES, study_of
from nclab.train import train
from tests.data.conftest import write_cifar, write_digit_struct, write_idx, write_mnist

NAMES = preset_names()
# (feature dim d, trainable parameters) of each preset's full model; a new preset adds its line here
BUILDS = {
    "bce2025-cifar10-resnet18-bce-adamw": (512, 11_173_962),
    "bce2025-cifar10-resnet18-bce-sgd": (512, 11_173_962),
    "bce2025-cifar10-resnet18-ce-adamw": (512, 11_173_962),
    "bce2025-cifar10-resnet18-ce-sgd": (512, 11_173_962),
    "bce2025-cifar10-swin-bce-adamw": (768, 26_598_646),
    "bce2025-cifar10-swin-bce-sgd": (768, 26_598_646),
    "bce2025-cifar10-swin-bce-sgd-bias-decay": (768, 26_598_646),
    "bce2025-cifar10-swin-ce-adamw": (768, 26_598_646),
    "bce2025-cifar10-swin-ce-sgd": (768, 26_598_646),
    "bce2025-cifar10-vit-bce-adamw": (512, 11_096_586),
    "bce2025-cifar10-vit-bce-sgd": (512, 11_096_586),
    "bce2025-cifar10-vit-bce-sgd-bias-decay": (512, 11_096_586),
    "bce2025-cifar10-vit-ce-adamw": (512, 11_096_586),
    "bce2025-cifar10-vit-ce-sgd": (512, 11_096_586),
    "bce2025-da1-densenet121-bce-adamw": (512, 1_766_858),
    "bce2025-da1-densenet121-bce-sgd": (512, 1_766_858),
    "bce2025-da1-densenet121-ce-adamw": (512, 1_766_858),
    "bce2025-da1-densenet121-ce-sgd": (512, 1_766_858),
    "bce2025-da1-resnet18-bce-adamw": (512, 11_173_962),
    "bce2025-da1-resnet18-bce-sgd": (512, 11_173_962),
    "bce2025-da1-resnet18-ce-adamw": (512, 11_173_962),
    "bce2025-da1-resnet18-ce-sgd": (512, 11_173_962),
    "bce2025-da1-resnet50-bce-adamw": (2048, 23_520_842),
    "bce2025-da1-resnet50-bce-sgd": (2048, 23_520_842),
    "bce2025-da1-resnet50-ce-adamw": (2048, 23_520_842),
    "bce2025-da1-resnet50-ce-sgd": (2048, 23_520_842),
    "center-cifar10-center-128d": (128, 418_858),
    "center-cifar10-center-2d": (2, 401_344),
    "center-cifar10-standalone-128d": (128, 417_568),
    "center-cifar10-standalone-2d": (2, 401_314),
    "center-cifar10-xent-128d": (128, 418_858),
    "center-cifar10-xent-2d": (2, 401_344),
    "center-fashion-center-128d": (128, 418_570),
    "center-fashion-center-2d": (2, 401_056),
    "center-fashion-standalone-128d": (128, 417_280),
    "center-fashion-standalone-2d": (2, 401_026),
    "center-fashion-xent-128d": (128, 418_570),
    "center-fashion-xent-2d": (2, 401_056),
    "center-mnist-center-128d": (128, 418_570),
    "center-mnist-center-2d": (2, 401_056),
    "center-mnist-standalone-128d": (128, 417_280),
    "center-mnist-standalone-2d": (2, 401_026),
    "center-mnist-xent-128d": (128, 418_570),
    "center-mnist-xent-2d": (2, 401_056),
    "lc2024-kjv-gpt-wd0.1": (128, 446_208),
    "lc2024-kjv-gpt-wd5e-4": (128, 446_208),
    "demo": (256, 152_330),
    "li2023-cifar10-resnet18": (512, 11_173_962),
    "li2023-cifar10-resnet18-etf": (10, 8_859_762),
    "li2023-mnist-resnet18": (512, 11_172_810),
    "li2023-mnist-resnet18-etf": (10, 8_858_610),
    "li2023-svhn-resnet18": (512, 11_173_449),
    "zhou2022-cifar10-ce": (2048, 66_847_050),
    "zhou2022-cifar10-focal": (2048, 66_847_050),
    "zhou2022-cifar10-ls": (2048, 66_847_050),
    "zhou2022-cifar10-mse": (2048, 66_847_050),
    "zhou2022-cifar100-ce": (2048, 67_031_460),
    "zhou2022-cifar100-focal": (2048, 67_031_460),
    "zhou2022-cifar100-ls": (2048, 67_031_460),
    "zhou2022-cifar100-mse": (2048, 67_031_460),
    "zhu2021-cifar10-adam": (512, 11_181_642),
    "zhu2021-cifar10-etf": (512, 11_168_842),
    "zhu2021-cifar10-etf-fixdim": (10, 8_859_762),
    "zhu2021-cifar10-feature-decay": (512, 11_181_642),
    "zhu2021-cifar10-fixdim": (10, 8_859_862),
    "zhu2021-cifar10-lbfgs": (512, 11_181_642),
    "zhu2021-cifar10-learned": (512, 11_173_962),
    "zhu2021-cifar10-random-mlp": (1024, 8_417_290),
    "zhu2021-cifar10-random-resnet18": (512, 11_173_962),
    "zhu2021-cifar10-sgd": (512, 11_181_642),
    "zhu2021-mnist-adam": (512, 11_181_642),
    "zhu2021-mnist-etf": (512, 11_168_842),
    "zhu2021-mnist-etf-fixdim": (10, 8_859_762),
    "zhu2021-mnist-feature-decay": (512, 11_181_642),
    "zhu2021-mnist-fixdim": (10, 8_859_862),
    "zhu2021-mnist-lbfgs": (512, 11_181_642),
    "zhu2021-mnist-learned": (512, 11_173_962),
    "zhu2021-mnist-sgd": (512, 11_181_642),
}
STUDY_SIZES = {
    "zhu2021": 18,
    "zhou2022": 8,
    "li2023": 5,
    "bce2025": 26,
    "center": 18,
    "lc2024": 2,
    "other": 1,
}
# the on-disk format each preset dataset is read from; trained below: one preset per (format, model)
FORMAT = {
    "digits": "embedded",
    "mnist": "idx",
    "fashion_mnist": "idx",
    "cifar10": "cifar pickles",
    "cifar100": "cifar pickles",
    "mlab_mnist": "idx composed",
    "mlab_cifar10": "cifar pickles composed",
    "svhn_multilabel": "svhn format-1",
    "text": "text corpus",
}


def one_per_format_and_model() -> list[str]:
    """The first preset (by name) of each (data format, model name) pair."""
    first: dict[tuple[str, str], str] = {}
    for name in NAMES:
        cfg = resolve(preset=name)
        first.setdefault((FORMAT[cfg.data.name], cfg.model.name), name)
    return sorted(first.values())


TRAINED = one_per_format_and_model()
# the trained presets that draw the end-of-run figures: the first of each data format (their keys differ:
# multi-label, text, vision); the others run with train.figures=false, as drawing is most of a tiny run
DRAWN = set({FORMAT[resolve(preset=n).data.name]: n for n in reversed(TRAINED)}.values())


def _fashion_slice(directory: Path) -> None:
    """The first 100 train / 40 test images of the real Fashion-MNIST (IDX files), else random ones."""
    if not DEBIAN_FASHION_MNIST.is_dir():
        write_mnist(directory, 100, 40, seed=1)
        return
    directory.mkdir(parents=True)
    for prefix, n in (("train", 100), ("t10k", 40)):
        for kind in ("images-idx3", "labels-idx1"):
            stem = f"{prefix}-{kind}-ubyte"
            write_idx(directory / f"{stem}.gz", read_idx(DEBIAN_FASHION_MNIST / f"{stem}.gz")[:n])


@pytest.fixture(scope="module")
def study_root(tmp_path_factory) -> Path:
    """One data root holding every dataset the presets name, each a few images per class."""
    root = tmp_path_factory.mktemp("studies")
    write_mnist(root / "MNIST" / "raw", 100, 20)
    _fashion_slice(root / "FashionMNIST" / "raw")
    write_cifar(root, datasets.CIFAR10, 10, 10, cyclic=True)
    write_cifar(root, datasets.CIFAR100, 200, 100, cyclic=True)  # one "train" file: 2 per class
    digits = [[d] for d in range(1, 10)] + [[1, 2], [3, 4, 5]]
    write_digit_struct(root / "SVHN" / "format1" / "train", digits)
    write_digit_struct(root / "SVHN" / "format1" / "test", digits)
    (root / "corpus.txt").write_text("In the beginning God created the heaven and the earth.\n" * 60)
    return root


SMALL = {
    "resnet18": 0.125,
    "resnet50": 0.125,
    "wide_resnet50": 0.0625,
    "mlp": 64,
    "vit": 64,
    "swin_cifar": 12,
    "gpt": 16,
}


def tiny(name: str, root: Path | None = None) -> list[str]:
    """Overrides that shrink a preset's data to a few images per class, its run to one epoch of one or two
    steps, and its model's width (the full models are built in `test_preset_builds_its_full_model`); the
    rest (loss, head, optimizer, schedule, data format and variants) stays the preset's."""
    out = ["epochs=1", "train.device=cpu", "train.batch_size=16", "measure.batch_size=64"]
    cfg = resolve(preset=name)
    if cfg.data.name.startswith("mlab_"):
        sizes = {"single": 2, "pair": 1, "test_single": 1, "test_pair": 1}
        out += [f"data.{k}={v}" for k, v in sizes.items()]
    elif cfg.data.name == "text":  # a 3 kB fixture corpus in short windows
        out += [f"data.corpus={root / 'corpus.txt'}", "data.context=16", "model.heads=2"]
    elif cfg.data.name not in ("digits", "svhn_multilabel"):
        out.append(f"data.per_class={2 if cfg.data.val_fraction else 1}")
    if cfg.data.val_fraction:
        out.append("data.val_fraction=0.5")  # one of two images per class held out
    if cfg.model.name in SMALL:
        out.append(f"model.width={SMALL[cfg.model.name]}")
    if cfg.measure.save_features_at:  # the preset's epochs are past the one epoch run here
        out.append("measure.save_features_at=[1]")
    return out


@pytest.mark.parametrize("name", NAMES)
def test_preset_builds_its_full_model(name):
    cfg = resolve(preset=name)
    info = DATASET_INFO[cfg.data.name]
    assert describe(cfg, info.input_shape(cfg.data), info.classes) == BUILDS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINED)
def test_preset_trains_one_epoch_on_tiny_data(name, study_root, tmp_path, no_checksums):
    figures = [] if name in DRAWN else ["train.figures=false"]
    overrides = [f"data.root={study_root}", "data.download=false", *tiny(name, study_root), *figures]
    cfg = resolve(preset=name, overrides=overrides)
    cfg.out = str(tmp_path)
    run = train(cfg)
    (record,) = run.metrics()
    assert record["epoch"] == 1 and math.isfinite(record["step_loss"])
    assert record["nc1"] is not None and math.isfinite(record["nc1"])
    assert run.status()["state"] == "finished"


@pytest.mark.parametrize("name", NAMES)
def test_preset_says_what_it_reproduces(name):
    about = preset_about(name)
    assert about.get("description") and about.get("source") and "\n" not in about["description"]
    assert set(about) <= {"description", "source", "series"}
    if study_of(name) != "other":
        assert about["source"].startswith(STUDIES[study_of(name)].split(",")[0])
    assert "about" not in read_preset(name)


def test_presets_cover_the_five_studies():
    assert sorted(NAMES) == sorted(BUILDS)
    counts = {key: sum(study_of(n) == key for n in NAMES) for key in [*STUDIES, "other"]}
    assert counts == STUDY_SIZES


def test_presets_command_lists_every_study_and_shows_one(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for key, title in STUDIES.items():
        assert f"{key}: {title}" in out
    assert all(name in out for name in NAMES)
    assert main(["presets", "zhou2022-cifar10-mse"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("zhou2022-cifar10-mse: WideResNet50-2") and "\nsource: Zhou et al. 2022" in shown
    assert "name: mse" in shown and "scale: 15.0" in shown and "clip_grad_norm: 2.0" in shown
    assert main(["presets", "zhu2021-nope"]) == 2
    assert capsys.readouterr().err.startswith("error: preset 'zhu2021-nope' is unknown")


def test_study_settings_in_the_presets():
    """Spot checks against ../shared/reference: the values a reproduction depends on."""
    vit = resolve(preset="bce2025-cifar10-vit-bce-sgd")
    assert (vit.model.width, vit.model.heads, vit.model.head_dim, vit.model.mlp_dim) == (512, 10, 64, 512)
    assert vit.head.bias_sign == -1 and vit.optim.scale_lr and vit.loss.name == "bce"
    da1 = resolve(preset="bce2025-da1-resnet18-bce-sgd")
    assert da1.head.bias_mean == 6 and da1.optim.milestones == [0.3, 0.6, 0.8] and da1.optim.gamma == 0.2
    zhou = resolve(preset="zhou2022-cifar100-ls")
    assert zhou.loss.smoothing == 0.05 and zhou.data.val_fraction == 0.1 and zhou.train.clip_grad_norm == 2
    assert zhou.optim.milestones == pytest.approx([3 / 7, 5 / 7])
    center = resolve(preset="center-fashion-center-2d")
    assert center.loss.center_weight == 2 and center.optim.schedule == "plateau" and center.data.rotation == 5
    zhu = resolve(preset="zhu2021-mnist-lbfgs")
    assert zhu.data.rgb32 and zhu.model.stem == "imagenet" and zhu.train.batch_size == 2048


def test_fashion_slice_is_real_when_debian_has_it(study_root):
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    with gzip.open(study_root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    assert labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # Fashion-MNIST's first train labels
