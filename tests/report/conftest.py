"""Run directories written through the real `Run` API with known metrics, scores and features (no training),
so figure tests can compare what is drawn with what the runs hold."""

import numpy as np
import pytest
import torch

from nclab.config import resolve
from nclab.runs import Run

KEYS = ["nc1", "nc2_h", "nc2_w", "nc3", "nc4_ncc", "nc4_bias", "train_acc", "test_acc", "cdnv", "test_loss"]


def curve(key: int, run: float, epoch: int) -> float:
    """A distinct positive value per (metric, run, epoch)."""
    return round((1 + key) * (1 + run) / (1 + epoch), 6)


def write_run(root, name, overrides=(), epochs=5, scores=False, features=False, offset=0.0, classes=False):
    """A run in `root` whose record of epoch e holds curve(i, offset, e) for KEYS[i], with score samples,
    2-D features (10 classes, spreading out epoch by epoch) and per-class vectors (classes/) when asked."""
    run = Run.create(resolve(None, [f"name={name}", f"out={root}", *overrides]))
    gen = np.random.default_rng(int(offset * 100))
    for e in range(1, epochs + 1):
        run.append_metrics({"epoch": e} | {k: curve(i, offset, e) for i, k in enumerate(KEYS)})
        if scores:
            arrays = {
                "score_pos": gen.normal(5 + offset, 1, 200),
                "score_neg": gen.normal(-1, 1, 900),
                "bias": gen.normal(offset, 0.1, 10),
            }
            run.save_arrays("scores", e, {k: torch.tensor(v, dtype=torch.float32) for k, v in arrays.items()})
        if classes:
            counts = torch.tensor([2.0**k for k in range(10)])
            vectors = {k: torch.tensor(gen.uniform(0, 1, 10)) for k in ("nc1_class", "nc3_cos", "nc4_ncc")}
            run.save_arrays("classes", e, {"counts": counts, **vectors})
        if features:
            labels = torch.arange(60) % 10
            h = torch.stack([labels.float(), -labels.float()], 1) * e + torch.tensor(
                gen.normal(0, 0.1, (60, 2))
            )
            run.save_arrays(
                "features",
                e,
                {"train_features": h.float(), "train_labels": labels, "test_features": h[:20].float() * 2,
                 "test_labels": labels[:20].clone()},
            )  # fmt: skip
    return run


@pytest.fixture
def make_run(tmp_path):
    """make_run(name, [key=value ...], epochs=5, scores=False, features=False, offset=0): write_run in the
    test's tmp_path."""

    def make(name, overrides=(), **kwargs):
        return write_run(tmp_path, name, overrides, **kwargs)

    return make
