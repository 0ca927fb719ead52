"""state.encode/decode (resume states without pickle) and the RNG and progress Stateful parts."""

import random

import numpy as np
import torch

from nclab.state import Progress, RNGState, decode, encode


def test_encode_decode_round_trip_of_optimizer_and_rng_states():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)  # holds inf
    state = {"opt": opt.state_dict(), "plateau": plateau.state_dict(), "rng": RNGState().state_dict()}
    tensors, skeleton = encode(state)
    back = decode(tensors, skeleton)
    assert back["opt"]["state"].keys() == {0, 1}  # integer keys survive
    buffer = opt.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(back["opt"]["state"][0]["momentum_buffer"], buffer)
    assert back["plateau"]["best"] == float("inf")
    assert back["rng"]["python"] == random.getstate()
    assert np.array_equal(back["rng"]["numpy"][1], np.random.get_state()[1])
    fresh = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.5, momentum=0.9)
    fresh.load_state_dict(back["opt"])
    assert fresh.param_groups[0]["lr"] == 0.1


def test_rng_state_restores_every_generator():
    saved = RNGState().state_dict()
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    RNGState().load_state_dict(decode(*encode(saved)))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws


def test_progress_tracks_the_best_test_accuracy():
    p = Progress()
    p.update(1, {"epoch": 1, "test_acc": 0.5})
    p.update(2, None)  # unmeasured: last and best unchanged
    assert (p.epoch, p.last["epoch"]) == (2, 1)
    p.update(3, {"epoch": 3, "test_acc": 0.4})
    assert (p.epoch, p.best_test_acc, p.best_epoch, p.last["epoch"]) == (3, 0.5, 1, 3)
    q = Progress()
    q.load_state_dict(decode(*encode(p.state_dict())))
    assert q == p
