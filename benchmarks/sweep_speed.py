"""Wall time of N tiny runs as one packed `nclab sweep` (Ray Tune, trials side by side, worker processes
reused between trials) against the same N runs as sequential `nclab train` commands (the shell loop a sweep
replaces), on the same machine in one invocation. Both write the same run directories.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/sweep_speed.py                  # CPU: 8 runs
    python benchmarks/sweep_speed.py --gpu 0.25 --device cuda                          # 4 trials per GPU
    python benchmarks/sweep_speed.py --runs 1 --epochs 1 --set train.figures=false     # gpu_check --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from nclab.runs import Run


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cpu", type=float, default=1.0, help="CPUs per trial")
    parser.add_argument("--gpu", type=float, default=0.0, help="GPUs per trial (0.25: 4 trials per GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], help="an override of every run, e.g. seed=1")
    args = parser.parse_args()
    base = {"preset": "demo", "epochs": args.epochs, "model.width": 16, "model.depth": 1}
    base["train.device"] = args.device
    base |= {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    nclab = [sys.executable, "-m", "nclab"]
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).parents[1] / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = [f"{k}={v}" for k, v in base.items() if k != "preset"]
        sequential = sum(
            timed([*nclab, "train", "--preset", "demo", *settings, f"seed={s}", f"out={root}/seq", "--quiet"])
            for s in range(args.runs)
        )
        sweep = {
            "base": base,
            "grid": {"seed": list(range(args.runs))},
            "out": str(root / "sweep"),
            "resources": {"cpu": args.cpu, "gpu": args.gpu},
        }
        (root / "sweep.yaml").write_text(yaml.safe_dump(sweep))
        packed = timed([*nclab, "sweep", str(root / "sweep.yaml")])
        done = [Run(p.parent).status()["state"] for p in (root / "sweep").glob("*/config.yaml")]
        assert done == ["finished"] * args.runs, done
    print(
        json.dumps(
            {
                "runs": args.runs,
                "epochs": args.epochs,
                "resources": {"cpu": args.cpu, "gpu": args.gpu},
                "cpus": os.cpu_count(),
                "sequential_s": round(sequential, 1),
                "sweep_s": round(packed, 1),
                "speedup": round(sequential / packed, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
