"""The UFM simulator against the closed forms, its run directory, and bad input."""

import math

import pytest
import torch

from nclab.cli import main
from nclab.losses import LOSSES, CrossEntropy
from nclab.metrics import table
from nclab.runs import load
from nclab.ufm import UFMConfig, bce_solution, ce_norm, mse_alpha, resolve_ufm, simulate


@pytest.fixture(autouse=True)
def _one_thread():
    """The problems are tiny: one thread avoids thread hand-off costing more than the arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = ["K=4", "d=6", "n=4", "lambda_W=5e-3", "lambda_H=5e-3", "lambda_b=5e-3", "iterations=1500"]


def ufm(tmp_path, *overrides: str):
    return simulate(resolve_ufm(None, [f"out={tmp_path}", *SMALL, *overrides]))


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def ratio_error(sim, c: float) -> float:
    """max_i ||h_i - c w_{y_i}|| / ||c w_{y_i}||."""
    hw = c * sim.W[sim.targets]
    return ((sim.H - hw).norm(dim=1) / hw.norm(dim=1)).max().item()


@pytest.mark.parametrize("loss", ["ce", "mse", "focal", "label_smoothing"])
def test_logit_losses_reach_a_simplex_etf(tmp_path, loss):
    sim = ufm(tmp_path, f"loss={loss}")
    r = sim.record
    assert r["nc1"] < 1e-6
    assert max(r["nc2_h"], r["nc2_w"], r["nc3"]) < 1e-3
    assert r["train_acc"] == 1.0
    assert sim.checks and all(c.passed for c in sim.checks), sim.report()


def test_ce_features_are_scaled_classifiers_with_the_derived_norm(tmp_path):
    sim = ufm(tmp_path, "loss=ce")
    k, n, lam = 4, 4, 5e-3
    c = math.sqrt(lam / (n * lam))
    assert ratio_error(sim, c) < 0.01
    # ||W||_F^2 = ((K-1)/c) log(c/lambda_W - (K-1)), minimising f on the ETF family
    expected = (k - 1) / c * math.log(c / lam - (k - 1))
    assert rel(sim.W.square().sum().item(), expected) < 0.01
    assert rel(ce_norm(sim.run.config()), expected) < 1e-12
    assert (sim.b - sim.b.mean()).abs().max() < 1e-3


def test_ce_collapses_to_zero_when_c_is_below_k_lambda_w(tmp_path):
    # c = sqrt(lambda_W / (n lambda_H)) = 0.5 < K lambda_W = 0.8
    sim = ufm(tmp_path, "loss=ce", "lambda_W=0.2", "lambda_H=0.2")
    assert sim.H.norm(dim=1).max() < 1e-6 and sim.W.norm() < 1e-6
    assert [c.name for c in sim.checks if "regime" in c.name] and all(c.passed for c in sim.checks)


def mse_norms(k: int, n: int, lam_w: float, lam_h: float, scale: float, alpha: float, rank: int):
    """(||W||_F^2, ||H||_F^2) of the MSE UFM minimiser, written out independently of nclab.ufm."""
    z = scale - k * math.sqrt(n * lam_w * lam_h) / (2 * alpha)
    return rank * z * math.sqrt(n * lam_h / lam_w), rank * z * math.sqrt(n * lam_w / lam_h)


@pytest.mark.parametrize(
    ("bias", "lambda_b", "rank"), [("true", 0.0, 3), ("true", 5e-3, 3), ("false", 0.0, 4)]
)
def test_mse_norms_and_bias_match_the_closed_form(tmp_path, bias, lambda_b, rank):
    sim = ufm(tmp_path, "loss=mse", "loss.scale=2", f"bias={bias}", f"lambda_b={lambda_b}", "iterations=3000")
    cfg = sim.run.config()
    alpha = mse_alpha(LOSSES.get("mse")(cfg.loss, 4, 6), cfg)
    assert alpha == pytest.approx(1 / 4)  # nclab's mse averages the K squared errors (SPEC.md)
    w_sq, h_sq = mse_norms(4, 4, 5e-3, 5e-3, 2.0, alpha, rank)
    assert rel(sim.W.square().sum().item(), w_sq) < 0.01
    assert rel(sim.H.square().sum().item(), h_sq) < 0.01
    if bias == "true":  # b = 2 alpha s / (K (2 alpha + lambda_b))
        assert rel(sim.b.mean().item(), 2 * alpha * 2 / (4 * (2 * alpha + lambda_b))) < 0.01
        assert sim.record["nc2_w"] < 1e-3
    else:  # W W^T ∝ I: the orthogonal frame; the centred means are still a simplex ETF
        gram = sim.W @ sim.W.T
        assert (gram / gram.norm() - torch.eye(4, dtype=gram.dtype) / 2).norm() < 1e-3
        assert sim.record["nc2_w"] > 0.1 and sim.record["nc2_h"] < 1e-3
    assert all(c.passed for c in sim.checks), sim.report()


def test_mse_below_the_threshold_has_zero_features(tmp_path):
    # alpha = 1/K: the sum-over-K problem with the lambdas times K, so the threshold
    # sqrt(n lambda_W lambda_H) >= 2 alpha s / K = 0.125: 0.15 above it, 0.1 below it
    sim = ufm(tmp_path, "loss=mse", "lambda_W=0.075", "lambda_H=0.075", "name=zero")
    assert sim.H.norm(dim=1).max() < 1e-6 and sim.W.norm() < 1e-6
    assert any("W = H = 0" in n for n in sim.notes) and all(c.passed for c in sim.checks)
    alive = ufm(tmp_path, "loss=mse", "lambda_W=0.05", "lambda_H=0.05", "name=alive")
    w_sq, h_sq = mse_norms(4, 4, 0.05, 0.05, 1.0, 1 / 4, 3)
    assert rel(alive.W.square().sum().item(), w_sq) < 0.01 and rel(alive.H.square().sum().item(), h_sq) < 0.01


@pytest.mark.parametrize(("d", "lambda_b"), [(6, 0.0), (3, 5e-3)])
def test_bce_biases_are_equal_and_match_the_predicted_value(tmp_path, d, lambda_b):
    sim = ufm(tmp_path, "loss=bce", f"d={d}", f"lambda_b={lambda_b}")
    assert (sim.b.std() / sim.b.mean().abs()).item() < 1e-3
    w_sq, beta = bce_solution(sim.run.config())
    assert rel(sim.b.mean().item(), beta) < 0.01
    assert rel(sim.W.square().sum().item(), w_sq) < 0.01
    assert beta < 0  # z = W h + b: the negatives dominate, so the threshold -b is positive
    assert all(c.passed for c in sim.checks), sim.report()


def test_bce_default_shape_with_bias_decay_is_on_the_etf_family(tmp_path):
    # d >= K and lambda_b > 0 as `nclab ufm loss=bce`: lambda_b |beta*| = 5e-3 * 1.957 < gamma = 0.01, so
    # the minimiser is the NC family and every check applies
    sim = ufm(tmp_path, "loss=bce", "d=6", "lambda_b=5e-3")
    w_sq, beta = bce_solution(sim.run.config())
    assert 5e-3 * abs(beta) < 0.01
    assert rel(sim.b.mean().item(), beta) < 1e-6 and rel(sim.W.square().sum().item(), w_sq) < 1e-6
    assert sim.record["nc2_w"] < 1e-6 and ratio_error(sim, 0.5) < 1e-5
    assert len(sim.checks) == 8 and all(c.passed for c in sim.checks), sim.report()
    assert not any("global feature mean" in n for n in sim.notes)


def test_bce_where_a_feature_mean_pays_checks_equal_biases_only(tmp_path):
    # gamma = sqrt(4 * 1e-4 * 1e-4) = 2e-4 < lambda_b |beta*|: the bias partly moves into a global feature
    # mean (b = -0.04 instead of beta*), which leaves the ETF family (nc2_w ~ 0.51)
    sim = ufm(tmp_path, "loss=bce", "d=6", "lambda_W=1e-4", "lambda_H=1e-4")
    _, beta = bce_solution(sim.run.config())
    assert 5e-3 * abs(beta) > 2e-4 and rel(sim.b.mean().item(), beta) > 0.1
    assert sim.record["nc2_w"] > 0.1
    assert any("global feature mean" in n for n in sim.notes)
    assert [c.name for c in sim.checks] == ["equal biases: std/|mean| of b"] and sim.checks[0].passed


def test_mse_with_a_large_bias_decay_matches_the_shifted_closed_form(tmp_path):
    # K = 4, n = 4, lambda_W = lambda_H = 5e-3 (gamma = 0.01), alpha = 1/4, s_t = 2, lambda_b = 0.1:
    # lambda_b * 2 alpha s_t / (K (2 alpha + lambda_b)) = 0.0208 > gamma, so b = gamma/lambda_b = 0.1 and
    # zeta = 2 - 4 * 0.01 / 0.5 - 4 * 0.01 / 0.1 = 1.52 next to z* = 2 - 0.08 = 1.92 (rank 3)
    sim = ufm(tmp_path, "loss=mse", "loss.scale=2", "lambda_b=0.1", "iterations=3000")
    z, zeta = 1.92, 1.52
    nuclear = 3 * z + zeta  # ||Z||_*; sqrt(n lambda_H / lambda_W) = sqrt(n lambda_W / lambda_H) = 2
    assert rel(sim.b.mean().item(), 0.1) < 1e-6
    assert (
        rel(sim.W.square().sum().item(), 2 * nuclear) < 1e-6
        and rel(sim.H.square().sum().item(), 2 * nuclear) < 1e-6
    )
    gram = z * (torch.eye(4) - 1 / 4) + zeta / 4  # W W^T up to scale
    etf = (torch.eye(4) - 1 / 4) / math.sqrt(3)
    assert sim.record["nc2_w"] == pytest.approx((gram / gram.norm() - etf).norm().item(), abs=1e-6)
    assert sim.record["nc2_h"] < 1e-6 and sim.record["nc3"] < 1e-6
    assert any("zeta = 1.52" in n for n in sim.notes)
    assert len(sim.checks) == 9 and all(c.passed for c in sim.checks), sim.report()
    # d = K - 1 leaves no direction for the mean: zeta = 0, b = 2 alpha s_t / (K (2 alpha + lambda_b))
    narrow = ufm(tmp_path, "loss=mse", "loss.scale=2", "lambda_b=0.1", "d=3", "iterations=3000")
    assert (
        rel(narrow.b.mean().item(), 0.25 / 0.6) < 1e-6
        and rel(narrow.W.square().sum().item(), 2 * 3 * z) < 1e-6
    )
    assert all(c.passed for c in narrow.checks), narrow.report()


def test_pick_all_label_features_are_tagwise_averages(tmp_path):
    sim = ufm(tmp_path, "loss=pick_all_label", "n=3", "n_pair=2")
    assert sim.targets.shape == (4 * 3 + 6 * 2, 4)
    one = sim.targets.sum(1) == 1
    means = torch.stack([sim.H[one & (sim.targets[:, k] > 0)].mean(0) for k in range(4)])
    two = sim.targets.sum(1) == 2
    for row, h in zip(sim.targets[two], sim.H[two], strict=True):
        a, b = row.nonzero().flatten().tolist()
        cos = torch.nn.functional.cosine_similarity(h, means[a] + means[b], dim=0)
        assert torch.arccos(cos.clamp(-1, 1)) < 0.05
    assert sim.record["tagwise_angle"] < 0.05 and sim.record["nc1"] < 1e-6
    assert all(c.passed for c in sim.checks), sim.report()


def test_center_loss_has_ce_minimisers_with_centres_at_the_means(tmp_path):
    sim = ufm(tmp_path, "loss=center")
    assert sim.record["nc1"] < 1e-6 and all(c.passed for c in sim.checks), sim.report()
    assert any(c.name.startswith("centres = class means") for c in sim.checks)


def test_standalone_center_runs_without_a_classifier(tmp_path):
    sim = ufm(tmp_path, "loss=standalone_center")
    assert sim.W is None and sim.record["nc2_w"] is None and sim.record["nc1"] < 1e-6
    assert not sim.checks and "no closed form" in sim.notes[0]


@pytest.mark.parametrize("optim", ["optim=gd optim.lr=2", "optim=momentum optim.lr=0.5"])
def test_gradient_descent_and_momentum_converge(tmp_path, optim):
    sim = ufm(tmp_path, *optim.split(), "lambda_W=0.05", "lambda_H=0.05", "lambda_b=0.05", "iterations=3000")
    assert sim.record["nc1"] < 1e-6 and sim.record["nc2_w"] < 1e-3
    assert all(c.passed for c in sim.checks), sim.report()


def test_d_below_k_minus_1_is_flagged_outside_the_theorem(tmp_path):
    sim = ufm(tmp_path, "K=6", "d=2")
    assert not sim.checks and "d=2 < K-1=5" in sim.notes[0]
    assert all(math.isfinite(sim.record[k]) for k in ("nc1", "nc2_h", "nc2_w", "nc3"))
    assert sim.record["nc2_w"] > 0.1  # 6 classes cannot form a simplex ETF in 2 dimensions


def test_imbalanced_counts_and_minority_note(tmp_path):
    cfg = resolve_ufm(None, ["K=5", "n=20", "minority=3", "imbalance_ratio=10"])
    assert cfg.counts == [20, 20, 2, 2, 2]
    sim = ufm(tmp_path, "K=5", "n=20", "minority=3", "imbalance_ratio=10")
    assert torch.bincount(sim.targets).tolist() == [20, 20, 2, 2, 2]
    assert not sim.checks and "imbalanced" in sim.notes[0] and "minority collapse" in sim.notes[1]


def test_same_seed_same_result(tmp_path):
    a = ufm(tmp_path, "iterations=20", "name=a")
    b = ufm(tmp_path, "iterations=20", "name=b")
    assert torch.equal(a.H, b.H) and torch.equal(a.W, b.W)


@pytest.mark.slow
def test_cli_run_dir_works_with_plot_and_compare(tmp_path, capsys):
    args = ["ufm", "--quiet", f"out={tmp_path}", *SMALL]
    assert main([*args, "name=ce"]) == 0
    out = capsys.readouterr().out
    assert "closed-form checks (7/7 pass)" in out and "h_i = c w_y" in out and "(tol 0.01) pass" in out
    assert main([*args, "name=mse", "loss=mse"]) == 0
    runs = [str(tmp_path / "ce"), str(tmp_path / "mse")]
    run = load(runs[0])
    assert isinstance(run.config(), UFMConfig) and run.status()["state"] == "finished"
    records = run.metrics()
    assert records[0]["epoch"] == 0 and records[-1]["epoch"] == run.status()["epochs_done"]
    assert {"nc1", "nc2_h", "nc2_w", "nc3", "nc4_bias", "train_acc", "train_loss", "objective"} <= set(
        records[-1]
    )
    capsys.readouterr()
    assert main(["compare", *runs]) == 0
    table = capsys.readouterr().out
    assert "loss.name" in table and "| ce | ce |" in table and "| mse | mse |" in table
    assert main(["plot", *runs, "--kind", "grid"]) == 0
    assert (tmp_path / "ce" / "figures" / "grid.png").stat().st_size > 0
    assert set(run.load_arrays("features", records[-1]["epoch"])) == {"train_features", "train_labels"}
    assert main(["measure", runs[0]]) == 2
    assert "nclab ufm` run" in capsys.readouterr().err
    assert main(["train", "--resume", runs[0]]) == 2
    assert "nclab ufm` run, which keeps no resume state" in capsys.readouterr().err


@pytest.mark.parametrize("loss", ["ce", "pick_all_label", "standalone_center"])
def test_every_key_a_ufm_run_writes_is_declared(tmp_path, loss):
    sim = ufm(tmp_path, f"loss={loss}", "iterations=5")
    for key in set().union(*sim.run.metrics()):
        table.metric(key)  # raises for an undeclared key


class NeedsImages(CrossEntropy):
    needs_inputs = True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["K=1"], "K: Input should be greater than or equal to 2"),
        (["lambda_H=-1"], "lambda_H: Input should be greater than or equal to 0"),
        (["lambda", "K=3"], "config file lambda not found"),
        (["colour=red"], "colour: unknown key"),
        (["loss=images"], "loss=images reads the input images"),
        (["loss=nope"], "'nope' is not one of"),
        (["n_pair=3"], "n_pair (two-label samples) needs loss=pick_all_label"),
        (["loss=standalone_center", "lambda_H=0"], "give it lambda_H > 0"),
        (["loss.reduction=sum"], "averages the loss over samples"),
        (["minority=4", "K=4"], "leaves no majority class"),
    ],
)
def test_bad_input_is_one_error_line_and_no_run_dir(tmp_path, capsys, monkeypatch, args, message):
    for table_ in ("_items", "_options"):  # registered for this test only
        monkeypatch.setattr(LOSSES, table_, dict(getattr(LOSSES, table_)))
    LOSSES.register("images")(lambda cfg, k, d: NeedsImages(k))
    assert main(["ufm", f"out={tmp_path / 'runs'}", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message shown where no GPU is visible")
def test_device_cuda_without_a_gpu_is_one_error_line(tmp_path, capsys):
    assert main(["ufm", f"out={tmp_path}", "device=cuda"]) == 1
    err = capsys.readouterr().err
    assert err == "error: device=cuda but no CUDA device is visible; use device=cpu or auto\n"
    assert not tmp_path.joinpath("runs").exists() and not list(tmp_path.iterdir())


@pytest.mark.cuda
def test_cuda_runs_the_same_checks(tmp_path):
    sim = ufm(tmp_path, "device=cuda")
    assert sim.H.is_cuda and sim.checks and all(c.passed for c in sim.checks), sim.report()
