"""Run `nclab train ARGS` and SIGKILL the process at one point, for the kill/resume tests (test_resume.py).

    python tests/kill_harness.py POINT EPOCH ARGS...

POINT: steps (after 3 optimizer steps of EPOCH), measure (inside EPOCH's measured pass), metrics (half of
EPOCH's metrics line appended: a torn line), before_state (EPOCH's metrics and checkpoint written, its resume
state not), checkpoint / state (half of EPOCH's analysis checkpoint / resume state in the temp file),
and the end-of-run work after the last epoch's state (EPOCH unused): plot (half of figures/nc.png in its
temp file), figures (nc.png written, inside TensorBoard's figures), finished (every figure written, status
not yet);
slow (no kill: epoch 1 as usual, then epoch 2 waits up to a minute before it starts, for the test's
SIGTERM/SIGINT and second writer), none.
"""

import json
import os
import signal
import sys
import time

import nclab.files as files_module
import nclab.runs as runs_module
import nclab.train as train_module
from nclab.cli import main


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def cut(batches, after: int):
    for i, batch in enumerate(batches):
        if i == after:
            die()
        yield batch


point, at, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
epoch_of = {"n": 0}  # epochs started, counted by the patched _train_epoch
train_epoch = train_module._train_epoch


def patched_epoch(step, batches, epoch):
    epoch_of["n"] = epoch
    if point == "steps" and epoch == at:
        batches = cut(batches, 3)
    if point == "slow" and epoch > 1:
        time.sleep(60.0)  # the resume state of epoch 1 is written; the test's signal ends the wait
    return train_epoch(step, batches, epoch)


train_module._train_epoch = patched_epoch

if point == "measure":
    measure = train_module.measure

    def patched_measure(model, loss_fn, train_batches, *rest, **kw):
        if epoch_of["n"] == at:
            train_batches = cut(train_batches, 1)
        return measure(model, loss_fn, train_batches, *rest, **kw)

    train_module.measure = patched_measure

if point == "metrics":
    append = runs_module.Run.append_metrics

    def torn_append(self, record, *rest, **kw):
        if record["epoch"] == at:
            line = json.dumps(record).encode()
            with open(self.path / "metrics.jsonl", "ab") as f:
                f.write(line[: len(line) // 2])
                f.flush()
                os.fsync(f.fileno())
            die()
        return append(self, record, *rest, **kw)

    runs_module.Run.append_metrics = torn_append

if point == "before_state":
    save_state = runs_module.Run.save_state

    def killed_save_state(self, parts, epoch, cfg):
        if epoch == at:
            die()
        return save_state(self, parts, epoch, cfg)

    runs_module.Run.save_state = killed_save_state

if point in ("checkpoint", "state"):
    save_file = files_module.save_file
    target = f".epoch_{at:04d}.safetensors.tmp" if point == "checkpoint" else ".state.safetensors.tmp"

    def half_write(tensors, path, metadata=None):
        save_file(tensors, path, metadata=metadata)
        if path.name == target and (point == "checkpoint" or epoch_of["n"] == at):
            os.truncate(path, path.stat().st_size // 2)  # the temp file half written
            die()

    files_module.save_file = half_write

if point == "figures":

    def killed_figures(writer, run, epoch, nc_png):
        writer.add_text("half/done", "1", epoch)  # something of the end-of-run work is in the events
        writer.flush()
        die()

    train_module.log_figures = killed_figures

if point == "plot":
    import nclab.report.style as style_module  # the figure stack only where the run is killed drawing

    def half_figure(path, fill):
        tmp = path.with_name(f".{path.name}.tmp")
        fill(tmp)
        os.truncate(tmp, tmp.stat().st_size // 2)
        die()

    style_module.replace = half_figure  # report.style.save writes every figure through it

if point == "finished":
    set_status = runs_module.Run.set_status

    def killed_status(self, state, *rest, **kw):
        if state == "finished":
            die()
        return set_status(self, state, *rest, **kw)

    runs_module.Run.set_status = killed_status

sys.exit(main(["train", *args]))
