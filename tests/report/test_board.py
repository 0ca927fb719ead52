"""TensorBoard gets the figures at the end of training and, at measure.save_features_at, the embedding
projector with class-name labels (and the 2-D scatter when d = 2)."""

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from nclab.metrics import table
from nclab.report.board import log_features


def images(log_dir):
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return events.Tags()["images"]


def test_training_logs_figures_and_projector(tiny_runs):
    run = tiny_runs[0]  # digits, features saved at epochs 1, 2, 3
    assert {"figures/nc", "figures/scores"} <= set(images(run))
    config = (run / "projector" / "projector_config.pbtxt").read_text()
    assert config.count("tensor_name") == 6  # train and test at three epochs
    labels = (run / "projector" / "00003" / "train_features" / "metadata.tsv").read_text().split()
    tensors = (run / "projector" / "00003" / "train_features" / "tensors.tsv").read_text().splitlines()
    assert set(labels) == set("0123456789") and len(labels) == len(tensors)
    assert not list(run.glob("0000*"))  # projector folders stay out of the run's top level


def test_two_dimensional_features_also_get_the_scatter(tmp_path):
    labels = torch.arange(12) % 3
    features = {"train_features": torch.randn(12, 2), "train_labels": labels}
    with SummaryWriter(tmp_path / "p") as projector, SummaryWriter(tmp_path / "w") as writer:
        log_features(projector, writer, 4, features, ["cat", "dog", "eel"])
    assert images(tmp_path / "w") == ["features/2d"]
    metadata = (tmp_path / "p" / "00004" / "train_features" / "metadata.tsv").read_text().split()
    assert metadata == [["cat", "dog", "eel"][k] for k in labels.tolist()]


def test_scalars_carry_their_metric_description(tiny_runs):
    events = EventAccumulator(str(tiny_runs[0]))
    events.Reload()
    assert len(events.Scalars("nc/nc1")) == 3  # still plain scalars, one per measured epoch
    for key in ("nc1", "test_acc", "score_pos_q05"):
        entry = table.metric(key)
        described = events.SummaryMetadata(table.tag(key)).summary_description
        assert described == entry.description + (f" [{entry.source}]" if entry.source else "")
