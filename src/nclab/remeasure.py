"""`nclab measure RUN_DIR`: the in-training measurement (measure.py) re-run on saved checkpoints.

Data, model and loss are rebuilt from the run's config.yaml with the same builders and evaluation loaders
as training, so the numbers equal the in-training ones (same batches, eval mode, float64 statistics).
Records go to measure.jsonl (one per epoch, replacing earlier records of the same epoch; the file is
rewritten atomically after every epoch, so a failure keeps what was measured before it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from nclab.config import RunConfig
from nclab.errors import NclabError
from nclab.measure import Measurement, accuracy, measure
from nclab.runs import Run
from nclab.train import build_parts

__all__ = ["SPLITS", "measure_checkpoints", "measure_run"]

SPLITS = ("train", "test")


def measure_checkpoints(
    run: Run, epochs: Sequence[int] | None = None, splits: Sequence[str] = SPLITS, features: bool = False
) -> Iterator[tuple[int, Measurement]]:
    """Yield (epoch, Measurement) for each requested checkpoint (all saved ones by default), in order.

    `features=True` also keeps the per-class feature subsample of `measure.features_per_class`.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise NclabError(f"--split {','.join(splits)}: choose from {','.join(SPLITS)}")
    cfg = run.config()
    if not isinstance(cfg, RunConfig):
        raise NclabError(
            f"{run.path} is an `nclab {cfg.kind}` run: metrics.jsonl is final, there is no model to measure"
        )
    saved = run.checkpoints()
    epochs = sorted(set(epochs)) if epochs else sorted(saved)
    if not epochs:
        raise NclabError(f"{run.path} has no checkpoints; train with train.save_every=N to save some")
    missing = [e for e in epochs if e not in saved]
    if missing:
        raise NclabError(
            f"no checkpoint for epochs {missing} in {run.path}/checkpoints; saved: {sorted(saved)}"
        )
    parts = build_parts(cfg, run.path)
    data, model, loss_fn, k = parts.splits, parts.model, parts.loss_fn, parts.splits.num_classes
    train_batches, test_batches = parts.measure_train, parts.measure_test
    val = parts.val if "train" in splits else None
    for epoch in epochs:
        run.restore(epoch, model, loss_fn)
        measured = measure(
            model,
            loss_fn,
            train_batches if "train" in splits else None,
            test_batches if "test" in splits else None,
            k,
            multilabel=data.multilabel,
            features_per_class=cfg.measure.features_per_class if features else False,
            score_samples=cfg.measure.score_samples,
            layers=cfg.measure.layers,
            ood_batches=parts.ood,
            strict=cfg.measure.strict,
        )
        if val is not None:
            measured.record["val_acc"] = accuracy(model, val)
        yield epoch, measured


@torch.no_grad()
def measure_run(run: Run, epochs: Sequence[int] | None = None, splits: Sequence[str] = SPLITS) -> list[int]:
    """Measure checkpoints into measure.jsonl (and scores/); returns the epochs measured."""
    records = {r["epoch"]: r for r in run.read_jsonl("measure.jsonl")}
    done = []
    for epoch, measured in measure_checkpoints(run, epochs, splits):
        records[epoch] = {"epoch": epoch} | measured.record
        run.write_jsonl("measure.jsonl", [records[e] for e in sorted(records)])
        if measured.scores:
            run.save_arrays("scores", epoch, measured.scores)
        if measured.classes:
            run.save_arrays("classes", epoch, measured.classes)
        done.append(epoch)
    return done
