"""The device-resident loader: seeded epochs, on-device crop/flip/rotation, timm mixing, host fallback."""

import pytest
import torch

from nclab.cli import main
from nclab.config import DataConfig
from nclab.data import Splits
from nclab.data.loader import DeviceLoader, build_mix, crop_flip, loaders, rotate
from nclab.errors import ConfigError
from tests.data.conftest import write_mnist

CPU = torch.device("cpu")


def images(n=12, c=3, size=8, seed=0):
    return torch.randint(
        1, 256, (n, c, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_crop_flip_is_a_padded_crop_or_its_mirror():
    x = images()
    out = crop_flip(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    crops = [padded[:, :, i : i + 8, j : j + 8] for i in range(9) for j in range(9)]
    flips = 0
    for k in range(len(x)):
        same = [bool(torch.equal(out[k], c[k])) for c in crops]
        mirrored = [bool(torch.equal(out[k], c[k].flip(2))) for c in crops]
        assert any(same) or any(mirrored)
        flips += any(mirrored) and not any(same)
    assert 0 < flips < len(x)
    assert torch.equal(out, crop_flip(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, crop_flip(x, torch.Generator().manual_seed(1)))


def test_rotate_zero_degrees_is_identity_and_keeps_a_centred_disc():
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(rotate(x, torch.Generator().manual_seed(0), degrees=0.0), x)
    yy, xx = torch.meshgrid(torch.arange(32) - 15.5, torch.arange(32) - 15.5, indexing="ij")
    r2 = yy**2 + xx**2
    disc = (r2 < 144).float().expand(4, 3, 32, 32)
    bar = (xx.abs() < 1).float().expand(4, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    out = rotate(disc, gen)
    assert out[..., r2 < 100].eq(1).all() and out[..., r2 > 169].eq(0).all()  # only the rim may move
    assert ((rotate(bar, gen) != bar).sum((1, 2, 3)) > 0).sum() >= 3  # a bar is not (unless the angle is ~0)


def test_epochs_are_seeded_permutations_and_normalised():
    x, y = images(10), torch.arange(10)
    loader = DeviceLoader(x, y, 4, CPU, mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=True, seed=3)
    first = torch.cat([b[1] for b in loader])
    second = torch.cat([b[1] for b in loader])
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    again = DeviceLoader(x, y, 4, CPU, shuffle=True, seed=3)
    assert torch.equal(torch.cat([b[1] for b in again]), first)
    xb, _ = next(iter(DeviceLoader(x, y, 4, CPU, mean=(0.5,) * 3, std=(0.25,) * 3)))
    assert torch.allclose(xb, (x[:4].float() / 255 - 0.5) / 0.25)


def test_augmented_loader_changes_train_batches_only():
    s = Splits(
        images(16), torch.arange(16) % 4, images(8, seed=1), torch.arange(8) % 4, 4, (0.5,) * 3, (0.2,) * 3
    )
    train, measure_train, _ = loaders(s, 8, 16, CPU, 0, DataConfig(augment="crop_flip_rotate"))
    xb, yb = next(iter(train))
    assert xb.shape == (8, 3, 8, 8) and xb.dtype == torch.float32
    plain = next(iter(measure_train))[0]
    assert torch.allclose(plain, (s.train_x.float() / 255 - 0.5) / 0.2)
    assert not torch.equal(xb, plain[yb.argsort()][:8])


def test_flip_rotate_without_a_crop_keeps_or_mirrors_each_image():
    """The center-loss study's Fashion-MNIST pipeline: flip + a small rotation, no crop."""
    x = images(32)
    loader = DeviceLoader(x, torch.arange(32), 32, CPU, shuffle=True, augment="flip_rotate", rotation=1e-4)
    xb, yb = next(iter(loader))
    plain = x[yb].float() / 255
    same = (xb == plain).flatten(1).all(1)
    mirrored = (xb == plain.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_augment_needs_images():
    with pytest.raises(ConfigError, match="needs uint8 images"):
        DeviceLoader(torch.rand(4, 5), torch.arange(4), 2, CPU, augment="crop_flip")


@pytest.mark.parametrize("mix", ["mixup", "cutmix", "both"])
def test_mix_gives_soft_targets_and_drops_the_odd_tail(mix):
    s = Splits(images(10), torch.arange(10) % 5, images(4), torch.arange(4), 5, (0.5,) * 3, (0.2,) * 3)
    train = loaders(s, 4, 16, CPU, 0, DataConfig(mix=mix, mix_smoothing=0.1))[0]
    batches = list(train)
    assert len(batches) == len(train) == 2
    for _, y in batches:
        assert y.shape == (4, 5) and y.dtype == torch.float32
        assert torch.allclose(y.sum(1), torch.ones(4)) and (y > 0).all()  # smoothing spreads mass to all
    with pytest.raises(ConfigError, match=r"even train\.batch_size"):
        DeviceLoader(s.train_x, s.train_y, 3, CPU, mix=build_mix(DataConfig(mix=mix), 5, False))


def test_host_fallback_gives_the_same_batches():
    s = Splits(images(10), torch.arange(10), images(4), torch.arange(4), 10, (0.5,) * 3, (0.2,) * 3)
    dev = loaders(s, 4, 4, CPU, 7, DataConfig(augment="crop_flip"))
    host = loaders(s, 4, 4, CPU, 7, DataConfig(augment="crop_flip", resident="host", workers=0))
    assert host[0].resident is False and dev[0].resident is True
    for a, b in zip([*dev[0], *dev[2]], [*host[0], *host[2]], strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.slow
def test_training_with_augmentation_and_mixing_reaches_the_loss(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", 40, 20)
    code = main(
        [
            "train",
            "data=mnist",
            f"data.root={tmp_path}",
            "data.download=false",
            "data.augment=crop_flip",
            "data.mix=both",
            "train.batch_size=8",
            "epochs=1",
            "model.width=16",
            f"out={tmp_path}/runs",
            "name=r",
            "train.device=cpu",
            "--quiet",
        ]
    )
    assert code == 0
    from nclab.runs import load

    record = load(tmp_path / "runs" / "r").metrics()[-1]
    assert 0.0 <= record["step_acc"] <= 1.0 and record["step_loss"] > 0
