"""torchvision-backed datasets read from files in their official formats, offline; the error line."""

import numpy as np
import pytest
import torch
from torchvision import datasets

from nclab.cli import main
from nclab.config import resolve
from nclab.data import class_names, load_dataset
from nclab.data.vision import DEBIAN_FASHION_MNIST, read_idx
from nclab.errors import DataError
from tests.data.conftest import write_cifar, write_mnist, write_svhn


def data_cfg(root, name, *extra):
    return resolve(None, [f"data={name}", f"data.root={root}", "data.download=false", *extra]).data


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_reads_gzip_idx(tmp_path, name, folder):
    arrays = write_mnist(tmp_path / folder / "raw", 30, 20)
    s = load_dataset(data_cfg(tmp_path, name), 0)
    assert s.train_x.shape == (30, 1, 28, 28) and s.train_x.dtype == torch.uint8
    assert s.test_x.shape == (20, 1, 28, 28) and s.train_y.dtype == torch.int64
    assert np.array_equal(s.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert s.test_y.tolist() == [i % 10 for i in range(20)]
    assert s.num_classes == 10
    assert s.mean == ((0.1307,) if name == "mnist" else (0.2860,))


def test_rgb32_resizes_and_triples_channels(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", 10, 10)
    s = load_dataset(data_cfg(tmp_path, "mnist", "data.rgb32=true"), 0)
    assert s.train_x.shape == (10, 3, 32, 32) and s.train_x.dtype == torch.uint8
    assert torch.equal(s.train_x[:, 0], s.train_x[:, 2])
    assert s.mean == (0.1307,) * 3 and s.std == (0.3081,) * 3


def test_read_idx_rejects_a_truncated_file(tmp_path):
    arrays = write_mnist(tmp_path, 5, 5)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    assert read_idx(path).tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09" + b"\x01")
    with pytest.raises(DataError, match="truncated"):
        read_idx(bad)


@pytest.mark.parametrize(
    "cls, name, classes", [(datasets.CIFAR10, "cifar10", 10), (datasets.CIFAR100, "cifar100", 100)]
)
def test_cifar_reads_python_pickles(tmp_path, no_checksums, cls, name, classes):
    rows = write_cifar(tmp_path, cls, 4, classes)
    s = load_dataset(data_cfg(tmp_path, name), 0)
    n_train = 4 * len(cls.train_list)
    assert s.train_x.shape == (n_train, 3, 32, 32) and s.train_x.dtype == torch.uint8
    assert s.test_x.shape == (4, 3, 32, 32) and s.num_classes == classes
    first, labels = rows[0]
    assert torch.equal(s.train_x[0], torch.from_numpy(first[0].reshape(3, 32, 32)))  # CHW planes kept
    assert s.train_y[:4].tolist() == labels
    assert s.mean == ((0.4914, 0.4822, 0.4465) if name == "cifar10" else (0.5071, 0.4865, 0.4409))


def test_svhn_reads_mat_files(tmp_path, no_checksums):
    mats = write_svhn(tmp_path / "SVHN", 12)
    s = load_dataset(data_cfg(tmp_path, "svhn"), 0)
    assert s.train_x.shape == (12, 3, 32, 32) and s.train_x.dtype == torch.uint8
    assert torch.equal(s.train_x[3], torch.from_numpy(mats["train"]["X"][..., 3]).permute(2, 0, 1))
    assert s.train_y.tolist() == [(i % 10 + 1) % 10 for i in range(12)]  # label 10 is digit 0


def test_normalize_options(tmp_path, no_checksums):
    write_svhn(tmp_path / "SVHN", 4)
    assert load_dataset(data_cfg(tmp_path, "svhn", "data.normalize=none"), 0).mean is None
    assert load_dataset(data_cfg(tmp_path, "svhn", "data.normalize=imagenet"), 0).std == (0.229, 0.224, 0.225)


@pytest.mark.parametrize(
    "name, where, how",
    [
        ("mnist", "MNIST/raw", "train-images-idx3-ubyte.gz"),
        ("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
        ("cifar100", "cifar-100-python", "cifar-100-python.tar.gz"),
        ("svhn", "SVHN", "train_32x32.mat"),
    ],
)
def test_offline_missing_files_is_one_error_line(tmp_path, capsys, name, where, how):
    code = main(
        ["train", f"data={name}", f"data.root={tmp_path}", "data.download=false", f"out={tmp_path}/runs"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {name}: ")
    assert str(tmp_path / where) in err and how in err and "data.download=true" in err
    assert not (tmp_path / "runs").exists()


def test_fashion_mnist_error_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr("nclab.data.vision.DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_dataset(data_cfg(tmp_path, "fashion_mnist"), 0)


@pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_debian_fashion_mnist(tmp_path):
    s = load_dataset(data_cfg(tmp_path, "fashion_mnist"), 0)
    assert s.train_x.shape == (60000, 1, 28, 28) and s.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(s.test_y).tolist() == [1000] * 10
    assert abs(s.train_x.float().mean().item() / 255 - 0.2860) < 1e-3  # the normalisation constant


@pytest.mark.parametrize(
    "cls, name, classes", [(datasets.CIFAR10, "cifar10", 10), (datasets.CIFAR100, "cifar100", 100)]
)
def test_cifar_class_names_come_from_the_meta_file(tmp_path, cls, name, classes):
    cfg = data_cfg(tmp_path, name)
    assert class_names(cfg, classes) == [str(k) for k in range(classes)]  # no files yet: indices
    write_cifar(tmp_path, cls, 1, classes)
    assert class_names(cfg, classes) == [f"c{i}" for i in range(classes)]


def test_torchvision_and_digit_class_names(tmp_path):
    assert class_names(data_cfg(tmp_path, "fashion_mnist"), 10)[:2] == ["T-shirt/top", "Trouser"]
    assert class_names(data_cfg(tmp_path, "mlab_fashion_mnist"), 10)[-1] == "Ankle boot"
    assert class_names(data_cfg(tmp_path, "mnist"), 10) == datasets.MNIST.classes
    assert class_names(data_cfg(tmp_path, "svhn"), 10) == list("0123456789")
    assert class_names(data_cfg(tmp_path, "digits"), 10) == list("0123456789")
    assert class_names(data_cfg(tmp_path, "gaussian"), 4) == ["0", "1", "2", "3"]
    assert class_names(data_cfg(tmp_path, "digits"), 3) == ["0", "1", "2"]  # names that do not fit K
