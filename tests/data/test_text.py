"""data=text: corpora, tokenizers and their cache, the contiguous split, token windows, bad input, and a
gpt run whose `nclab measure` reproduces the in-training record."""

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from nclab.cli import main
from nclab.config import resolve
from nclab.data import load_dataset
from nclab.data import text as text_mod
from nclab.data.text import TokenLoader, read_corpus
from nclab.errors import DataError
from nclab.metrics import table
from nclab.runs import load
from tests.warm import Warm


def corpus_file(tmp_path, n_sentences=300, seed=0):
    """A deterministic pseudo-English text: Zipf-ish word choice, punctuation, line breaks."""
    rng = np.random.default_rng(seed)
    words = ["the", "and", "of", "light", "earth", "God", "said", "waters", "day", "night", "was", "good"]
    p = 1 / np.arange(1, len(words) + 1)
    lines = []
    for _ in range(n_sentences):
        k = rng.integers(3, 9)
        lines.append(" ".join(rng.choice(words, k, p=p / p.sum())) + rng.choice([".", ",", ";", ":"]))
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def text_cfg(tmp_path, *extra):
    path = corpus_file(tmp_path)
    return resolve(None, ["data=text", f"data.corpus={path}", f"data.root={tmp_path / 'root'}", *extra]).data


def test_byte_tokens_split_contiguously_and_targets_are_the_next_ids(tmp_path):
    cfg = text_cfg(tmp_path, "data.context=16", "data.test_fraction=0.25")
    splits = load_dataset(cfg, 0)
    raw = torch.tensor(list((tmp_path / "corpus.txt").read_bytes()))
    n_test = round(len(raw) * 0.25)
    assert torch.equal(torch.cat([splits.train_x, splits.test_x]), raw)
    assert len(splits.test_x) == n_test and splits.num_classes == 256
    assert torch.equal(splits.train_y, splits.train_x[1:]) and torch.equal(splits.test_y, splits.test_x[1:])
    assert splits.input_shape == (16, 256) and not splits.multilabel


def test_ids_are_cached_memory_mapped_and_not_tokenised_again(tmp_path, monkeypatch):
    cfg = text_cfg(tmp_path, "data.tokenizer=word", "data.word_min_count=1")
    first = load_dataset(cfg, 0)
    (cache,) = (tmp_path / "root" / "text").glob("file-*/word-min1")
    assert isinstance(np.load(cache / "ids.npy", mmap_mode="r"), np.memmap)
    monkeypatch.setattr(text_mod, "tokenize", lambda *a: pytest.fail("tokenised twice"))
    again = load_dataset(cfg, 0)
    assert torch.equal(first.train_x, again.train_x) and first.num_classes == again.num_classes


def test_word_tokenizer_maps_rare_words_to_unk(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("a b a c a b d. " * 3 + "rare\n")
    cfg = resolve(
        None,
        ["data=text", f"data.corpus={path}", f"data.root={tmp_path}", "data.tokenizer=word",
         "data.word_min_count=2", "data.context=2", "data.test_fraction=0.3"],
    ).data  # fmt: skip
    splits = load_dataset(cfg, 0)
    ids = torch.cat([splits.train_x, splits.test_x])
    vocab = (next((tmp_path / "text").glob("file-*/word-min2")) / "vocab.txt").read_text().split("\n")[:-1]
    assert vocab == ["<unk>", "a", "b", ".", "c", "d"]  # by count, then alphabetically
    assert [vocab[i] for i in ids[:8]] == ["a", "b", "a", "c", "a", "b", "d", "."]
    assert vocab[ids[-1]] == "<unk>" and splits.num_classes == 6


def test_bpe_is_trained_once_and_a_local_hf_tokenizer_gives_the_same_ids(tmp_path):
    from transformers import PreTrainedTokenizerFast

    cfg = text_cfg(tmp_path, "data.tokenizer=bpe:300")
    splits = load_dataset(cfg, 0)
    (trained,) = (tmp_path / "root" / "text").glob("file-*/bpe-300/tokenizer.json")
    assert splits.num_classes <= 300 and int(splits.train_x.max()) < splits.num_classes
    hf_dir = tmp_path / "hf"
    PreTrainedTokenizerFast(tokenizer_file=str(trained)).save_pretrained(hf_dir)
    hf = load_dataset(text_cfg(tmp_path, f"data.tokenizer=hf:{hf_dir}"), 0)
    assert torch.equal(hf.train_x, splits.train_x) and hf.num_classes == splits.num_classes


def test_measured_windows_cover_every_target_once_without_padding(tmp_path):
    ids = torch.arange(103) * 7 % 50
    loader = TokenLoader(ids, context=10, batch_size=4, device=torch.device("cpu"))
    batches = list(loader)
    assert len(batches) == len(loader) == 4  # 10 full windows in batches of 4, then the 2-token tail alone
    assert [tuple(x.shape) for x, _ in batches] == [(4, 10), (4, 10), (2, 10), (1, 2)]
    assert torch.equal(torch.cat([y for _, y in batches]), ids[1:])
    for x, y in batches:  # target of position t is the input at t + 1
        assert torch.equal(y.view(x.shape)[:, :-1], x[:, 1:])


def test_training_windows_are_seeded_random_offsets_that_resume(tmp_path):
    ids = torch.arange(1000)
    loader = TokenLoader(ids, 8, 16, torch.device("cpu"), shuffle=True, seed=3, windows=40)
    first = [x for x, _ in loader]
    assert len(first) == len(loader) == 3 and sum(len(x) for x in first) == 40
    starts = torch.cat([x[:, 0] for x in first])
    assert len(set(starts.tolist())) > 30 and all(torch.equal(x, x[:, :1] + torch.arange(8)) for x in first)
    state = loader.state_dict()
    second = [x for x, _ in loader]
    other = TokenLoader(ids, 8, 16, torch.device("cpu"), shuffle=True, seed=0, windows=40)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, (b, _) in zip(second, other, strict=True))
    assert not torch.equal(first[0], second[0])


@pytest.mark.skipif(shutil.which("bible") is None, reason="Debian bible-kjv not installed")
def test_kjv_is_found_by_itself_without_verse_numbers():
    key, text = read_corpus("kjv")
    assert key == "kjv" and "In the beginning God created the heaven and the earth." in text
    assert "  1 In the beginning" not in text and len(text) > 4_000_000


def test_missing_package_names_the_apt_get_install(monkeypatch, tmp_path):
    monkeypatch.setattr(text_mod.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install bible-kjv bible-kjv-text"):
        read_corpus("kjv")
    monkeypatch.setattr(text_mod, "GCIDE", tmp_path / "absent.dz")
    with pytest.raises(DataError, match="apt-get install dict-gcide"):
        read_corpus("gcide")
    monkeypatch.setattr(text_mod, "FORTUNES", tmp_path)
    with pytest.raises(DataError, match="apt-get install fortunes"):
        read_corpus("fortunes")


@pytest.mark.parametrize(
    ("content", "overrides", "fragment"),
    [
        (None, ["data.corpus=nonesuch"], "neither a corpus name (kjv, fortunes, gcide) nor an existing"),
        (b"  \n", [], "is empty"),
        (b"abc\x00\x01\x02", [], "is binary, not text"),
        (b"\xff\xfe\xfa", [], "save it as UTF-8 text"),
        (b"caf\xe9 au lait\n", [], "not UTF-8 (byte 0xe9"),
        (b"tiny text", ["data.context=8"], "too few"),
        (
            b"x" * 500,
            ["data.tokenizer=bpe:10"],
            "data.tokenizer: write byte, word, bpe:N (N >= 258) or hf:DIR",
        ),
        (b"x" * 2000, ["data.tokenizer=hf:/nonexistent"], "no such directory"),
        (b"x" * 2000, ["data.per_class=3"], "data.per_class: not defined for data=text"),
        (b"x" * 2000, ["model=gpt", "data.context=64", "model.context=32"], "data.context=64 is longer than"),
        (b"x" * 2000, ["model=mlp"], "model=mlp"),
        (b"x" * 2000, ["model=gpt", "model.width=30", "model.heads=4"], "must divide"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, content, overrides, fragment):
    path = tmp_path / "c.txt"
    if content is not None:
        path.write_bytes(content)
    corpus = [] if any(o.startswith("data.corpus=") for o in overrides) else [f"data.corpus={path}"]
    model = [] if any(o.startswith("model=") for o in overrides) else ["model=gpt"]
    args = ["train", "data=text", *corpus, f"data.root={tmp_path}", *model, "epochs=1"]
    code = main([*args, *overrides, "train.device=cpu", f"out={tmp_path / 'runs'}", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert fragment in err and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_gpt_run_on_text_is_reproduced_by_nclab_measure(tmp_path):
    corpus = corpus_file(tmp_path)
    common = [f"data.root={tmp_path / 'root'}", f"out={tmp_path}", "train.device=cpu", "--quiet"]
    common.append("train.figures=false")  # metrics only (a text run's figures: the lc2024 preset's run)
    model = ["model=gpt", "model.width=16", "model.depth=1", "model.heads=2", "model.context=16"]
    args = [
        "train",
        "data=text",
        f"data.corpus={corpus}",
        "data.context=16",
        "epochs=2",
        "name=lm",
        "optim=adamw",
    ]
    assert main([*args, *model, "train.batch_size=8", "measure.batch_size=100", *common]) == 0
    run = tmp_path / "lm"
    assert main(["measure", str(run)]) == 0
    trained = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    measured = [json.loads(line) for line in (run / "measure.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in trained] == [1, 2]
    for a, b in zip(trained, measured, strict=True):
        assert {k: a[k] for k in b} == b
    bins = [k for k in trained[-1] if "_bin" in k]  # measure.frequency_bins=auto: 12 for text
    assert {"rank_bin00", "counts_bin00", "nc1_class_bin00", "w_norm_bin00"} <= set(bins) <= set(measured[-1])
    assert [k for k in trained[-1] if table.metric(k).group == "frequency"] == bins  # every key declared
    assert trained[-1]["train_loss"] < trained[0]["train_loss"] < np.log(256)


class NextTokenOracle(torch.nn.Module):
    """A stub LM over one known stream: the feature at position t of a window is the fixed vector of the
    token at t + 1 plus that position's fixed noise; it asserts the windows arrive consecutively."""

    def __init__(self, ids, table, noise):
        super().__init__()
        self.ids, self.table, self.noise, self.at = ids, table, noise, 0
        self.head = torch.nn.Linear(table.shape[1], table.shape[0], dtype=torch.float64)

    def forward(self, x):
        n = x.numel()
        assert torch.equal(x.reshape(-1), self.ids[self.at : self.at + n])
        h = self.table[self.ids[self.at + 1 : self.at + 1 + n]] + self.noise[self.at : self.at + n]
        self.at += n
        return self.head(h.view(*x.shape, -1))


def test_oracle_features_measured_through_the_windows_equal_nc_metrics_of_the_stream():
    from nclab.metrics import measure_model, nc_metrics

    g = torch.Generator().manual_seed(0)
    k, d, n = 40, 12, 3001
    p = 1 / torch.arange(1, k + 1, dtype=torch.float64)
    ids = torch.multinomial(p / p.sum(), n, replacement=True, generator=g)
    table = torch.randn(k, d, generator=g, dtype=torch.float64) * 3
    noise = torch.randn(n - 1, d, generator=g, dtype=torch.float64)
    model = NextTokenOracle(ids, table, noise)
    loader = TokenLoader(ids, context=16, batch_size=5, device=torch.device("cpu"))  # 187 windows + a tail
    record = measure_model(model, loader, layer="head", num_classes=k)
    assert model.at == n - 1  # every target position once
    features, labels = table[ids[1:]] + noise, ids[1:]
    expected = nc_metrics(features, labels, model.head.weight, model.head.bias, num_classes=k)
    assert {k: record[k] for k in expected} == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("min_count", "top_k"), [(20, None), (1, 6), (5, 10)])
def test_oracle_features_with_min_count_and_top_k_equal_nc_metrics_of_the_kept_tokens(min_count, top_k):
    from nclab.metrics import nc_metrics
    from nclab.metrics.epoch import Head, Settings, measure_epoch
    from nclab.metrics.hooks import HookedInput

    g = torch.Generator().manual_seed(1)
    k, d, n = 30, 10, 2500
    p = 1 / torch.arange(1, k + 1, dtype=torch.float64) ** 1.2
    ids = torch.multinomial(p / p.sum(), n, replacement=True, generator=g)
    table = torch.randn(k, d, generator=g, dtype=torch.float64) * 3
    noise = torch.randn(n - 1, d, generator=g, dtype=torch.float64)
    model = NextTokenOracle(ids, table, noise)
    counts = torch.bincount(ids[1:], minlength=k)
    settings = Settings(k, counts=(counts, counts), min_count=min_count, top_k=top_k)
    loader = TokenLoader(ids, context=16, batch_size=3, device=torch.device("cpu"))
    head = Head(model.head.weight.detach(), model.head.bias.detach())
    record = measure_epoch(
        model, loader, None, settings, HookedInput(model, "head", torch.device("cpu")), head
    )
    keep = settings.kept_classes()
    features, labels = table[ids[1:]] + noise, ids[1:]
    mask = keep[labels]
    expected = nc_metrics(features[mask], labels[mask], model.head.weight, model.head.bias, num_classes=k)
    assert {key: record.record[key] for key in expected} == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert record.record["samples_dropped"] == int((~mask).sum()) > 0
    assert record.record["classes_dropped"] == int(((counts > 0) & ~keep).sum())


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """(the train arguments of a tiny gpt text run, minus epochs/name/out; its uninterrupted 2-epoch run)."""
    tmp = tmp_path_factory.mktemp("text")
    corpus = corpus_file(tmp)
    args = [
        "data=text", f"data.corpus={corpus}", "data.context=16", f"data.root={tmp / 'root'}", "model=gpt",
        "model.width=16", "model.depth=1", "model.heads=2", "model.context=16", "optim=adamw",
        "train.batch_size=8", "train.device=cpu", "measure.batch_size=200", "train.figures=false", "--quiet",
    ]  # fmt: skip
    assert main(["train", *args, "epochs=2", "name=whole", f"out={tmp}"]) == 0
    return args, tmp / "whole"


def assert_same_text_run(run, whole):
    """metrics.jsonl byte for byte and every checkpoint's tensors (weights and the tied head once)."""
    from safetensors.torch import load_file

    assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
    for epoch in (1, 2):
        a, b = (load_file(r / "checkpoints" / f"epoch_{epoch:04d}.safetensors") for r in (run, whole))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


@pytest.mark.slow
@pytest.mark.xdist_group("text")  # one worker makes the module's text run (and warm server) for all
def test_text_run_resumed_equals_the_uninterrupted_run(tmp_path, text_run):
    """A 1-epoch gpt run extended with --resume epochs=2 equals a 2-epoch run (records, weights): the token
    loader's state (its epoch counter) and the model's tied head come back through the resume state."""
    args, whole = text_run
    assert main(["train", *args, "epochs=1", "name=part", f"out={tmp_path}"]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "epochs=2", "--quiet"]) == 0
    assert_same_text_run(tmp_path / "part", whole)


@pytest.fixture(scope="module")
def warm():
    """The killed runs are forked from one process that imported the training code (tests/warm.py): each
    costs its steps, not ~5 s of imports."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    server = Warm(["nclab.cli", "nclab.train", "torch._dynamo", "torch.utils.tensorboard"], env)
    yield server
    server.close()


@pytest.mark.slow
@pytest.mark.xdist_group("text")
@pytest.mark.parametrize(("point", "epoch"), [("steps", 2), ("measure", 2)])
def test_text_run_killed_then_resumed_equals_the_uninterrupted_run(tmp_path, text_run, warm, point, epoch):
    """SIGKILL (tests/kill_harness.py) after 3 steps of epoch 2 or inside its measured pass over the token
    windows, then `nclab train --resume`: the run of an uninterrupted one, as for image runs."""
    args, whole = text_run
    harness = Path(__file__).parents[1] / "kill_harness.py"
    proc = warm.start(
        [str(harness), point, str(epoch), *args, "epochs=2", "name=k", f"out={tmp_path}"], tmp_path
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    assert load(tmp_path / "k").state_name() == "killed"
    assert main(["train", "--resume", str(tmp_path / "k"), "--quiet"]) == 0
    assert_same_text_run(tmp_path / "k", whole)
