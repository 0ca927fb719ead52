"""Text corpora as token streams (`data=text`): every token position is a sample, its class the next token.

Corpora by name, from what Debian ships as plain text (found by themselves, one error line with the
`apt-get install` when missing), or by file (`data.corpus=PATH`, UTF-8 text):
- `kjv`: the King James Bible as the `bible` program prints it (packages bible-kjv, bible-kjv-text), verse
  numbers removed;
- `fortunes`: every fortune file of /usr/share/games/fortunes (packages fortunes, fortunes-min), the `%`
  separators removed;
- `gcide`: the GNU Collaborative International Dictionary of English (package dict-gcide), markup removed.

Tokenizers (`data.tokenizer`): `byte` (V = 256), `word` (words and punctuation; words seen fewer than
`data.word_min_count` times share id 0, `<unk>`), `bpe:N` (byte-level BPE of the `tokenizers` library with a
vocabulary of N, trained once on the corpus), `hf:DIR` (a local Hugging Face tokenizer). The ids are cached
as a memory-mapped .npy under `data.root/text/<corpus>/<tokenizer>/` beside the trained tokenizer.

The stream is split contiguously: the last `data.test_fraction` of the tokens is held out. Training takes
`data.context`-token windows at seeded random offsets; the measured passes read fixed consecutive windows
that cover every target position of a split exactly once (the last, shorter window in its own batch, so there
is no padding). A batch is (x (B, T) ids, y (B*T,) next-token ids): targets are flattened here, the model's
(B, T, d) features in `models.Classifier`, so losses, accumulators and accuracies see B*T samples.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nclab.components.data import TextOptions
from nclab.data import Splits
from nclab.errors import ConfigError, DataError
from nclab.files import read_text

__all__ = ["CORPORA", "TextOptions", "TokenLoader", "TokenSplits", "read_corpus", "token_loaders", "tokenize"]

FORTUNES = Path("/usr/share/games/fortunes")
GCIDE = Path("/usr/share/dictd/gcide.dict.dz")
KJV_RANGE = "Gen1:1-Rev22:21"
WORD = re.compile(r"\w+|[^\w\s]")
UNK = "<unk>"


@dataclass
class TokenSplits(Splits):
    """A split token stream: train_x/test_x the ids (1-D int64), train_y/test_y the next-token targets
    (the ids shifted by one, so counts of train_y are the class counts); the input shape is (T, V)."""

    context: int = 1
    tokenizer: str = "byte"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.context, self.num_classes)


def _kjv() -> str:
    if shutil.which("bible") is None:
        raise DataError(
            "corpus kjv needs the bible program and text: sudo apt-get install bible-kjv bible-kjv-text"
        )
    out = subprocess.run(["bible", KJV_RANGE], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise DataError(
            "corpus kjv: `bible` printed nothing; sudo apt-get install --reinstall bible-kjv-text"
        )
    return re.sub(r"(?m)^\s*\d+ ", "", out.stdout)


def _fortunes() -> str:
    files = sorted(p for p in FORTUNES.glob("*") if p.is_file() and p.suffix not in (".dat", ".u8"))
    if not files:
        raise DataError(f"corpus fortunes: no fortune files in {FORTUNES}; sudo apt-get install fortunes")
    text = "\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in files)
    return re.sub(r"(?m)^%\n", "", text)


def _gcide() -> str:
    if not GCIDE.is_file():
        raise DataError(f"corpus gcide: {GCIDE} not found; sudo apt-get install dict-gcide")
    with gzip.open(GCIDE) as f:  # dictzip is gzip-compatible
        return re.sub(r"<[^>]*>", "", f.read().decode("utf-8", errors="replace"))


CORPORA = {"kjv": _kjv, "fortunes": _fortunes, "gcide": _gcide}


def read_corpus(corpus: str) -> tuple[str, str]:
    """(cache key, text) of a named corpus or a UTF-8 file; one DataError for a missing, empty or binary
    file."""
    if corpus in CORPORA:
        return corpus, CORPORA[corpus]()
    path = Path(corpus).expanduser()
    if not path.exists():
        raise DataError(
            f"data.corpus={corpus}: neither a corpus name ({', '.join(CORPORA)}) nor an existing text file"
        )
    text = read_text(path, "data.corpus file")  # one line for a directory, binary, UTF-16, latin-1 bytes
    if not text.strip():
        raise DataError(f"data.corpus={corpus} is empty")
    return f"file-{hashlib.sha256(text.encode()).hexdigest()[:16]}", text


def _tokenizer_key(cfg: TextOptions) -> str:
    if cfg.tokenizer == "word":
        return f"word-min{cfg.word_min_count}"
    if cfg.tokenizer.startswith("hf:"):
        directory = str(Path(cfg.tokenizer[3:]).expanduser().resolve())
        return f"hf-{hashlib.sha256(directory.encode()).hexdigest()[:16]}"
    return cfg.tokenizer.replace(":", "-")


def _hf_tokenizer(directory: str) -> Any:
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise DataError(f"data.tokenizer=hf:{directory}: no such directory")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise DataError(f"data.tokenizer=hf:{directory}: no tokenizer there ({first})") from None


def tokenize(text: str, cfg: TextOptions, cache: Path) -> tuple[np.ndarray, int]:
    """(ids, vocabulary size V) of `text`; a trained tokenizer (word vocabulary, BPE) goes to `cache`."""
    if cfg.tokenizer == "byte":
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64), 256
    if cfg.tokenizer == "word":
        words = WORD.findall(text)
        counts = Counter(words)
        vocab = [
            UNK,
            *sorted((w for w, c in counts.items() if c >= cfg.word_min_count), key=lambda w: (-counts[w], w)),
        ]
        index = {w: i for i, w in enumerate(vocab)}
        (cache / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return np.fromiter((index.get(w, 0) for w in words), dtype=np.int64, count=len(words)), len(vocab)
    if cfg.tokenizer.startswith("bpe:"):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=int(cfg.tokenizer[4:]),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        lines = text.splitlines(keepends=True)
        tok.train_from_iterator(lines, trainer=trainer)
        tok.save(str(cache / "tokenizer.json"))
        ids = [i for enc in tok.encode_batch(lines) for i in enc.ids]
        return np.asarray(ids, dtype=np.int64), tok.get_vocab_size()
    tok = _hf_tokenizer(cfg.tokenizer[3:])
    return np.asarray(tok(text, add_special_tokens=False)["input_ids"], dtype=np.int64), len(tok)


def _cached_ids(cfg: TextOptions) -> tuple[np.ndarray, int]:
    """The corpus's ids, memory-mapped from the cache (tokenised and written on first use), and V."""
    key, text = read_corpus(cfg.corpus)
    cache = Path(cfg.root) / "text" / key / _tokenizer_key(cfg)
    ids_file, vocab_file = cache / "ids.npy", cache / "vocab_size"
    if not (ids_file.is_file() and vocab_file.is_file()):
        cache.mkdir(parents=True, exist_ok=True)
        ids, vocab = tokenize(text, cfg, cache)
        dtype = np.uint16 if vocab <= 1 << 16 else np.int32
        tmp = cache / "ids.tmp.npy"
        np.save(tmp, ids.astype(dtype))
        tmp.replace(ids_file)
        vocab_file.write_text(str(vocab))
    return np.load(ids_file, mmap_mode="r"), int(vocab_file.read_text())


def text(cfg: TextOptions, seed: int) -> TokenSplits:
    """The tokenised corpus split contiguously: train the first (1 - test_fraction), test the rest."""
    refused = {
        "per_class": cfg.per_class is not None, "imbalance": cfg.imbalance != "none",
        "val_fraction": cfg.val_fraction > 0, "random_labels": cfg.random_labels,
        "augment": cfg.augment != "none", "mix": cfg.mix != "none",
    }  # fmt: skip
    if any(refused.values()):
        keys = ", ".join(f"data.{k}" for k, v in refused.items() if v)
        raise ConfigError(f"{keys}: not defined for data=text (a token stream); drop it")
    ids, vocab = _cached_ids(cfg)
    ids = torch.from_numpy(np.asarray(ids[: cfg.tokens], dtype=np.int64))
    n_test = round(len(ids) * cfg.test_fraction)
    if min(n_test, len(ids) - n_test) < cfg.context + 1:
        raise DataError(
            f"data.corpus={cfg.corpus} gives {len(ids):,} tokens: too few for a train and a test split of at "
            f"least data.context + 1 = {cfg.context + 1} tokens each"
        )
    train, test = ids[: len(ids) - n_test], ids[len(ids) - n_test :]
    return TokenSplits(train, train[1:], test, test[1:], vocab, context=cfg.context, tokenizer=cfg.tokenizer)


class TokenLoader:
    """Windows of one token stream: (x (B, T), y (B*T,)), y the ids one position on.

    shuffle: `windows` windows per epoch at random offsets drawn from (seed, epoch) (the state is the epoch
    counter, as DeviceLoader's); otherwise consecutive windows starting at 0, T, 2T, ... whose targets cover
    positions 1..n-1 once, B windows a batch, the last shorter window alone."""

    def __init__(
        self, ids: Tensor, context: int, batch_size: int, device: torch.device, shuffle: bool = False,
        seed: int = 0, windows: int | None = None,
    ) -> None:  # fmt: skip
        self.device = torch.device(device)
        self.ids = ids.to(self.device)
        self.context = context
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.windows = windows or max(1, (len(ids) - 1) // context)
        self.epoch = 0
        self.resident, self.workers, self.channels_last = True, 0, False

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.seed = state["epoch"], state["seed"]

    def __len__(self) -> int:
        if self.shuffle:
            return -(-self.windows // self.batch_size)
        full = (len(self.ids) - 1) // self.context
        return -(-full // self.batch_size) + (1 if (len(self.ids) - 1) % self.context else 0)

    def _window(self, starts: Tensor, length: int) -> tuple[Tensor, Tensor]:
        w = self.ids[starts[:, None] + torch.arange(length + 1, device=self.device)]
        return w[:, :-1], w[:, 1:].reshape(-1)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        t, n = self.context, len(self.ids)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            starts = torch.randint(0, n - t, (self.windows,), generator=gen).to(self.device)
            self.epoch += 1
            for s in range(0, self.windows, self.batch_size):
                yield self._window(starts[s : s + self.batch_size], t)
            return
        full = (n - 1) // t
        starts = torch.arange(0, full * t, t, device=self.device)
        for s in range(0, full, self.batch_size):
            yield self._window(starts[s : s + self.batch_size], t)
        if (n - 1) % t:
            yield self._window(starts.new_tensor([full * t]), (n - 1) % t)


def token_loaders(
    splits: TokenSplits,
    batch_size: int,
    eval_batch_size: int,
    device: torch.device,
    seed: int,
    windows: int | None,
) -> tuple[TokenLoader, TokenLoader, TokenLoader]:
    """(random-offset train windows, B = train.batch_size; fixed train windows; fixed test windows), the
    measured ones with measure.batch_size tokens a batch (whole windows, at least one)."""
    t = splits.context
    per_eval = max(1, eval_batch_size // t)
    train = TokenLoader(splits.train_x, t, batch_size, device, shuffle=True, seed=seed, windows=windows)
    return (
        train,
        TokenLoader(train.ids, t, per_eval, device),
        TokenLoader(splits.test_x, t, per_eval, device),
    )
