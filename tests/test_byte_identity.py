"""Byte identity of the measured numbers across refactors (issue 20): tiny runs made by an older version
of the code are stored under tests/fixtures/byte_identity/; this test makes the same runs with the code as
it is now and compares every file the measurement writes: every record of metrics.jsonl and measure.jsonl
key by key, each value as its exact JSON text (the same keys, the same digits; the order of keys within a
line is not compared: JSON objects are unordered, and the refactor of issue 20 assembles them in another
order), every
saved array (scores/, features/, classes/) tensor for tensor (dtype, shape, bytes) and its safetensors
metadata (as a dict: safetensors writes its header keys in varying order), and the record of
`metrics.measure_model` on a checkpoint likewise.

The runs (CPU, one torch thread, digits, 2-epoch MLPs of width 16): `mlp` (cross-entropy, `measure.layers`
on a BatchNorm and a ReLU, features saved at epoch 2), `center` (center loss with `measure.ood=digits`),
`headless` (standalone center loss: no classifier is read), `mlab` (multi-label pick-all-label on a tiny
Fashion-MNIST composition; skipped without Fashion-MNIST on disk); after training each run is re-measured by
`nclab measure` (its measure.jsonl and the arrays it rewrites are a second snapshot). No record holds a
timing field (wall time etc.), so nothing is excluded; status.json (time stamp, pid), TensorBoard events,
figures and checkpoints are not measurement outputs and are not compared.

Fixture history: made by commit 3ba17a6 (before the measurement refactor of issue 20). Changed on purpose
since, and nothing else:
- issue 20 (one measured epoch): `measure_model` is training's measured epoch with a hook, so its record
  gains the train-split keys training reports (compactness, score_*, bias_*, uniform_acc,
  uniform_threshold, bias_sign; mlp/measure_model.json); multi-label NC keys come from the streaming
  accumulator instead of the two-pass one-shot code, which changes `nc1` and `test_nc1` in the last digits
  (the within-class scatter along Sigma_B's directions is v^T S_W v instead of sum_i ((h_i - mu) . v)^2;
  mlab/*/metrics.jsonl, measure.jsonl).
- issue 22 (numbers), regenerated: every jsonl and classes/ file of the four runs (scores/ and features/
  unchanged). (a) `measure.layers` hooks copy the layer's output: `backbone.2/*` (a BatchNorm1d followed by
  ReLU(inplace=True)) were the ReLU's values (equal to `backbone.3/*`) and are now the BatchNorm's own (nc1
  of epoch 2 doubles); (b) the accumulator sums around the first batch's mean, which moves every key made
  from class statistics (nc1.., nc2_h, cdnv*, energies, nc3*, nc4_bias, compactness, nc5, test_nc1,
  tag-wise, `<layer>/*`) by at most 1.2e-14 relative; (d) classes/ vectors are float64 (were float32).

Regenerate (only when a change of numbers is intended, and say which in the commit):
    PYTHONPATH=src python tests/test_byte_identity.py [RUN ...]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

pytestmark = pytest.mark.slow  # four trainings and their re-measurements

FIXTURE = Path(__file__).parent / "fixtures" / "byte_identity"
FASHION = Path("/usr/share/datasets/fashion-mnist")
COMMON = ["epochs=2", "model.width=16", "model.depth=2", "measure.score_samples=64"]
RUNS = {
    "mlp": [
        "measure.layers=[backbone.2,backbone.3]",
        "measure.save_features_at=[2]",
        "measure.features_per_class=4",
    ],
    "center": [
        "loss=center",
        "measure.ood=digits",
        "measure.save_features_at=[1]",
        "measure.features_per_class=3",
    ],
    "headless": ["loss=standalone_center", "measure.layers=[backbone.3]"],
    "mlab": [
        "data=mlab_fashion_mnist",
        "data.single=12",
        "data.pair=2",
        "data.test_single=4",
        "data.test_pair=1",
        "loss=pick_all_label",
        "measure.save_features_at=[2]",
        "measure.features_per_class=2",
    ],
}
ARRAYS = ("scores", "features", "classes")


def _available(name: str) -> bool:
    return name != "mlab" or (FASHION / "train-images-idx3-ubyte.gz").is_file()


def _snapshot(run: Path, dest: Path, jsonl: str) -> None:
    """Copy `jsonl` and every array file of `run` to `dest`."""
    dest.mkdir(parents=True)
    shutil.copy(run / jsonl, dest / jsonl)
    for kind in ARRAYS:
        for f in sorted((run / kind).glob("epoch_*.safetensors")):
            (dest / kind).mkdir(exist_ok=True)
            shutil.copy(f, dest / kind / f.name)


def _model_record(run: Path) -> str:
    """`measure_model` on the last checkpoint: h = the head's input, a tapped layer, the test split as OOD."""
    from nclab.metrics import measure_model
    from nclab.parts import build_parts
    from nclab.runs import load

    r = load(run)
    parts = build_parts(r.config(), r.labels())
    r.restore(2, parts.model, parts.loss_fn)
    record = measure_model(
        parts.model, parts.measure_train, layer="head", test_loader=parts.measure_test,
        layers=["backbone.3"], ood_loader=parts.measure_test,
    )  # fmt: skip
    return json.dumps(record) + "\n"


def make(name: str, out: Path) -> Path:
    """Make run `name` under `out` (train, snapshot, `nclab measure`, snapshot); returns its snapshot dir."""
    from nclab.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU kernels reduce in a thread-count-dependent order
    try:
        root = out / "data"
        data = [f"data.root={root}"] if name == "mlab" else []
        assert (
            main(["train", f"out={out / 'runs'}", f"name={name}", *COMMON, *RUNS[name], *data, "--quiet"])
            == 0
        )
        run = out / "runs" / name
        snap = out / "snap" / name
        _snapshot(run, snap / "train", "metrics.jsonl")
        assert main(["measure", str(run)]) == 0
        _snapshot(run, snap / "measure", "measure.jsonl")
        if name == "mlp":
            (snap / "measure_model.json").write_text(_model_record(run))
    finally:
        torch.set_num_threads(threads)
    return snap


def _tensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    with safe_open(path, "pt") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def _texts(line: str) -> dict[str, str]:
    """A JSON record as key -> the exact text of its value (floats are written round-trip exact)."""
    return {k: json.dumps(v) for k, v in json.loads(line).items()}


def compare(got: Path, want: Path) -> list[str]:
    """Differences between two snapshot trees: missing/extra files, text lines, tensors, metadata."""
    diffs = []
    files = {p.relative_to(want) for p in want.rglob("*") if p.is_file()}
    made = {p.relative_to(got) for p in got.rglob("*") if p.is_file()}
    diffs += [f"missing {p}" for p in sorted(files - made)] + [f"extra {p}" for p in sorted(made - files)]
    for rel in sorted(files & made):
        a, b = got / rel, want / rel
        if rel.suffix != ".safetensors":
            lines_a, lines_b = a.read_text().splitlines(), b.read_text().splitlines()
            if len(lines_a) != len(lines_b):
                diffs.append(f"{rel}: {len(lines_a)} lines, stored {len(lines_b)}")
            for i, (la, lb) in enumerate(zip(lines_a, lines_b, strict=False)):
                ka, kb = (_texts(line) for line in (la, lb))
                keys = [k for k in {**kb, **ka} if ka.get(k) != kb.get(k)]
                diffs += [f"{rel} line {i + 1}: {', '.join(keys)}"] if keys else []
            continue
        (ma, ta), (mb, tb) = _tensors(a), _tensors(b)
        if ma != mb:
            diffs.append(f"{rel}: metadata {ma} != {mb}")
        for key in sorted(set(ta) | set(tb)):
            x, y = ta.get(key), tb.get(key)
            same = x is not None and y is not None and x.dtype == y.dtype and x.shape == y.shape
            if not (same and torch.equal(x.reshape(-1).view(torch.uint8), y.reshape(-1).view(torch.uint8))):
                diffs.append(f"{rel}: tensor {key}")
    return diffs


@pytest.mark.parametrize("name", list(RUNS))
def test_measurement_outputs_equal_the_stored_runs_byte_for_byte(name, tmp_path):
    if not _available(name):
        pytest.skip(f"needs Fashion-MNIST in {FASHION}")
    assert (FIXTURE / name).is_dir(), f"fixture {name} missing: run {__file__} to make it"
    assert compare(make(name, tmp_path), FIXTURE / name) == []


if __name__ == "__main__":
    import tempfile

    for name in sys.argv[1:] or list(RUNS):
        if not _available(name):
            print(f"{name}: skipped (no Fashion-MNIST)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            snap = make(name, Path(tmp))
            shutil.rmtree(FIXTURE / name, ignore_errors=True)
            shutil.copytree(snap, FIXTURE / name)
        print(f"{name}: {sum(f.stat().st_size for f in (FIXTURE / name).rglob('*') if f.is_file())} bytes")
