"""`torchrun --nproc-per-node 2 -m nclab train` on the CPU (gloo): the same metrics as one process with the
same global batch, one run directory written by rank 0, `--resume` under torchrun; the exact merge of
per-rank NC accumulators."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nclab
from nclab.cli import main
from tests.warm import Warm

pytestmark = pytest.mark.slow  # process groups of two: torchrun and torch.multiprocessing

SRC = str(Path(nclab.__file__).parents[1])
# no BatchNorm (its batch statistics are per rank); 1437 train samples: batch 100 leaves an uneven last batch
ARGS = [
    "model.batch_norm=false", "model.width=16", "model.depth=1", "epochs=3", "train.batch_size=100",
    "measure.batch_size=256", "train.device=cpu", "optim.schedule=none", "train.figures=false", "--quiet",
]  # fmt: skip


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_match_one(tmp_path):
    """torchrun starts each rank as a thin client of a warm interpreter (tests/warm.py) that forks it as
    `python -m nclab train ...` with the rank's environment and streams; the ranks skip ~6 s of imports."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    training = ["nclab.cli", "nclab.train", "nclab.report.plots", "torch.distributed"]
    warm = Warm([*training, "sklearn.datasets", "torch._dynamo", "torch.utils.tensorboard"], env)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    train = [*torchrun, *warm.client("-m", "nclab", "train")]
    first = [
        *train,
        f"out={tmp_path}",
        "name=ddp",
        *(a for a in ARGS[:-1] if a != "epochs=3"),
        "epochs=2",
        "--quiet",
    ]
    then = [*train, "--resume", str(tmp_path / "ddp"), "epochs=3", "--quiet"]
    try:
        for cmd in (first, then):  # two epochs, then the third by extending the run under torchrun
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
    finally:
        warm.close()
    assert main(["train", f"out={tmp_path}", "name=one", *ARGS]) == 0

    ddp, one = records(tmp_path / "ddp"), records(tmp_path / "one")
    assert [r["epoch"] for r in ddp] == [1, 2, 3]
    assert set(ddp[-1]) == set(one[-1])
    for a, b in zip(ddp, one, strict=True):
        for key, value in b.items():
            assert a[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "one"]  # rank 1 wrote nothing of its own
    assert json.loads((tmp_path / "ddp" / "status.json").read_text())["state"] == "finished"


def _rng_worker(rank: int, store: str, out: str) -> None:
    """One of two gloo ranks: its own seeds, the gathered state saved and reloaded, draws compared."""
    import random

    import numpy as np
    import torch.distributed as dist

    from nclab.state import RNGState, decode, encode

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.manual_seed(100 + rank)
    random.seed(rank)
    np.random.seed(rank)
    saved = decode(*encode(RNGState().state_dict()))  # a collective: both ranks take part
    first = [torch.rand(3).tolist(), random.random(), float(np.random.rand())]
    torch.manual_seed(7)  # anything in between
    RNGState().load_state_dict(saved)
    again = [torch.rand(3).tolist(), random.random(), float(np.random.rand())]
    torch.save({"first": first, "again": again, "ranks": len(saved["ranks"])}, f"{out}/{rank}.pt")
    dist.destroy_process_group()


def test_resume_state_keeps_each_ranks_generators(tmp_path):
    """Under torchrun the resume state holds every rank's generators and each rank restores its own."""
    torch.multiprocessing.spawn(_rng_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    got = [torch.load(tmp_path / f"{r}.pt") for r in (0, 1)]
    assert all(g["ranks"] == 2 and g["again"] == g["first"] for g in got)
    assert got[0]["first"] != got[1]["first"]  # each rank its own stream, not rank 0's
