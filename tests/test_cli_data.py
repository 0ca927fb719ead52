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


def test_data_info_of_a_text_corpus_counts_its_tokens_under_the_tokenizer(tmp_path, capsys):
    """Text sizes depend on the corpus and tokenizer: `info` tokenises once (cached) and counts them."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("in the beginning was the word, and the word was with the light.\n" * 20)
    base = [
        "data",
        "info",
        "text",
        f"data.corpus={corpus}",
        f"data.root={tmp_path}",
        "data.test_fraction=0.1",
    ]
    n = len(corpus.read_bytes())  # byte tokens; targets are the ids shifted by one in each split
    assert main([*base, "data.context=8"]) == 0
    n_test = round(n * 0.1)
    assert (
        f"train {n - n_test - 1:,}, test {n_test - 1}, shape (8, 256), 256 classes" in capsys.readouterr().out
    )
    assert main([*base, "data.context=8", "data.tokenizer=word", "data.word_min_count=1"]) == 0
    words = set(corpus.read_text().replace(",", " , ").replace(".", " . ").split())
    assert f"{len(words) + 1} classes" in capsys.readouterr().out  # the words, punctuation and <unk>
