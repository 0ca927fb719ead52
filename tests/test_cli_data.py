"""`nclab data list` and `nclab data info NAME`."""

from nclab.cli import main


def test_data_list_names_every_dataset(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
        "svhn",
        "digits",
        "gaussian",
        "mlab_cifar10",
        "svhn_multilabel",
    ):
        assert name in out


def test_data_info_says_where_the_files_go(tmp_path, capsys):
    assert main(["data", "info", "cifar100", f"data.root={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "50,000" in out and "100 classes" in out and f"{tmp_path}/cifar-100-python (absent" in out
    assert main(["data", "info", "nope"]) == 2
    assert "'nope' is not one of" in capsys.readouterr().err
