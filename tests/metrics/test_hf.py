"""`nclab measure --model hf:DIR data=text`: a GPT-2 built from a small transformers config, saved locally.
The hooked features are the last hidden states after the final norm, logits = h W^T, and the record equals
nc_metrics of those features directly; bad directories and mismatches are one line."""

import json

import pytest
import torch

from nclab.cli import main
from nclab.config import resolve
from nclab.data import load_dataset
from nclab.data.loader import loaders
from nclab.metrics import nc_metrics
from nclab.metrics.hooks import FeatureTap
from nclab.metrics.lm import LM_KEYS, lm_spreads
from tests.data.test_text import corpus_file


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """(model dir, corpus, data root): a 1-layer GPT-2 with the corpus's own 300-token BPE. transformers is
    imported here, not at the top: collecting the suite, each xdist worker would pay GPT-2's ~3 cpu-s."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tmp = tmp_path_factory.mktemp("hf")
    corpus, root = corpus_file(tmp), tmp / "root"
    cfg = resolve(None, ["data=text", f"data.corpus={corpus}", f"data.root={root}", "data.tokenizer=bpe:300"])
    vocab = load_dataset(cfg.data, 0).num_classes
    (trained,) = root.glob("text/*/bpe-300/tokenizer.json")
    model_dir = tmp / "gpt2"
    PreTrainedTokenizerFast(tokenizer_file=str(trained)).save_pretrained(model_dir)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(model_dir)
    return model_dir, corpus, root


def data_args(gpt2, *extra):
    model_dir, corpus, root = gpt2
    return ["data=text", f"data.corpus={corpus}", f"data.root={root}", f"data.tokenizer=hf:{model_dir}",
            "data.context=16", "measure.batch_size=64", "train.device=cpu", *extra]  # fmt: skip


def test_hooked_features_are_the_final_hidden_states_and_the_record_is_nc_metrics_of_them(gpt2, tmp_path):
    model_dir = gpt2[0]
    cfg = resolve(None, data_args(gpt2))
    data = load_dataset(cfg.data, 0)
    _, train, test = loaders(data, 8, 64, torch.device("cpu"), 0, cfg.data)
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tap = FeatureTap(model, ["lm_head"], inputs=True)
    feats, labels = {}, {}
    with torch.no_grad():
        for split, batches in (("train", train), ("test", test)):
            hs, ys = [], []
            for x, y in batches:
                out = model(x, output_hidden_states=True)
                h = tap.features["lm_head"]
                assert torch.equal(h, out.hidden_states[-1].reshape(-1, 16))  # after ln_f
                assert torch.allclose(out.logits.reshape(-1, data.num_classes), h @ model.lm_head.weight.T)
                hs.append(h)
                ys.append(y)
            feats[split], labels[split] = torch.cat(hs), torch.cat(ys)
    tap.close()
    assert len(labels["train"]) == len(data.train_x) - 1  # every train target position once
    expected = nc_metrics(
        feats["train"], labels["train"], model.lm_head.weight, None, feats["test"], labels["test"],
        num_classes=data.num_classes,
    )  # fmt: skip
    out = tmp_path / "records.jsonl"
    sample = [*data_args(gpt2), "measure.weighting=sample"]
    assert main(["measure", "--model", f"hf:{model_dir}", "--out", str(out), *sample]) == 0
    assert main(["measure", "--model", f"hf:{model_dir}", "--out", str(out), *data_args(gpt2)]) == 0
    record, default = (json.loads(line) for line in out.read_text().splitlines())
    assert record["model"] == f"hf:{model_dir}"
    for key, value in expected.items():
        assert record[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    h, y = feats["train"], labels["train"]
    counts = torch.bincount(y, minlength=data.num_classes)
    seen = counts > 0
    means = torch.zeros(data.num_classes, 16, dtype=torch.float64).index_add_(0, y, h.double())[seen]
    means /= counts[seen, None]
    w = model.lm_head.weight.double()[seen]
    assert {k: record[k] for k in LM_KEYS} == pytest.approx(
        lm_spreads(means - h.double().mean(0), w), rel=1e-9
    )  # sample weighting: mu_G = the mean feature
    assert {k: default[k] for k in LM_KEYS} == pytest.approx(lm_spreads(means - means.mean(0), w), rel=1e-9)
    assert default["nc1"] != pytest.approx(record["nc1"], rel=1e-6)  # the LM default: class weighting


@pytest.mark.parametrize(
    ("model", "extra", "fragment"),
    [
        ("hf:{tmp}/absent", [], "no such directory"),
        ("hf:{tmp}", [], "no causal language model in"),
        ("hf:{model}", ["data.tokenizer=byte"], "vocabulary of 256, the model's head"),
        ("hf:{model}", ["data.context=40"], "data.context=40 is longer than the 32 positions"),
        ("hf:{model}", ["data=digits"], "measure it on data=text"),
    ],
)
def test_bad_hf_input_is_one_line(gpt2, tmp_path, capsys, model, extra, fragment):
    spec = model.format(tmp=tmp_path, model=gpt2[0])
    args = extra if extra == ["data=digits"] else [*data_args(gpt2), *extra]
    assert main(["measure", "--model", spec, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and fragment in err, err
