"""Cost of the per-epoch resume state (runs.Run.save_state / load_state) for ResNet18 + SGD momentum, against
the common baseline in the same process: torch.save of the same state dicts (pickle) + fsync, torch.load.

    python benchmarks/resume_state.py [--repeat 3] [--dir /tmp]

Both write the same parts (model, optimizer with momentum buffers, scheduler, RNG, loader, progress) to one
file system. nclab's save = encode to tensors + JSON skeleton, CRC-32 over the tensors, safetensors'
save_file into a temp file + fsync + rename + fsync of the directory; load = open, parse, verify the
checksum, decode, load into the parts. The save is paid once per epoch: its share of an epoch of
`--epoch-seconds` is printed for scale (this machine's disk, that machine's epoch).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from baselines import timed
from nclab.config import resolve
from nclab.models import build_model
from nclab.runs import Run
from nclab.state import Progress, RNGState


class Loader:
    def state_dict(self) -> dict[str, int]:
        return {"epoch": 7, "seed": 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--epoch-seconds", type=float, default=1.26, help="H100 ResNet18 epoch (DESIGN.md)")
    args = parser.parse_args()
    cfg = resolve(None, ["model=resnet18", "data=cifar10", f"out={args.dir}/nclab-bench-runs"])
    model = build_model(cfg, (3, 32, 32), 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model(torch.randn(8, 3, 32, 32))[0].sum().backward()
    optimizer.step()  # momentum buffers exist
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 40)
    parts = {
        "model": model, "optimizer": optimizer, "scheduler": scheduler, "rng": RNGState(), "loader": Loader(),
        "progress": Progress(3, {"epoch": 3, "nc1": 0.5}, 0.9, 3),
    }  # fmt: skip
    run = Run.create(cfg)
    baseline = Path(args.dir) / "nclab-bench-state.pt"

    def torch_save() -> None:
        with open(baseline, "wb") as f:
            torch.save({name: part.state_dict() for name, part in parts.items()}, f)
            f.flush()
            os.fsync(f.fileno())

    def torch_load() -> None:
        state = torch.load(baseline, weights_only=False)
        for name, part in parts.items():
            part.load_state_dict(state[name])

    t_save, _ = timed(run.save_state, parts, 3, device="cpu", repeat=args.repeat)
    t_load, _ = timed(run.load_state, parts, device="cpu", repeat=args.repeat)
    b_save, _ = timed(torch_save, device="cpu", repeat=args.repeat)
    b_load, _ = timed(torch_load, device="cpu", repeat=args.repeat)
    size, b_size = run.state_path.stat().st_size, baseline.stat().st_size
    print(f"state: {size / 1e6:.1f} MB (torch.save: {b_size / 1e6:.1f} MB)")
    print(f"save  nclab {t_save:.3f} s  torch.save+fsync {b_save:.3f} s  ratio {t_save / b_save:.2f}")
    print(f"load  nclab {t_load:.3f} s  torch.load       {b_load:.3f} s  ratio {t_load / b_load:.2f}")
    print(f"save per epoch of {args.epoch_seconds} s: {100 * t_save / args.epoch_seconds:.1f}% overhead")
    baseline.unlink()
    import shutil

    shutil.rmtree(run.path)


if __name__ == "__main__":
    main()
