"""Unconstrained features model (UFM): the last layer with free features, solved by full-batch optimisation.

Free features H (rows h_i in R^d; n_k samples of class k, N = sum_k n_k), classifier W (K x d, rows w_k) and
bias b (K) minimise Zhu et al. 2021's objective

    f(W, H, b) = (1/N) sum_i l(W h_i + b, y_i)
                 + lambda_W/2 ||W||_F^2 + lambda_H/2 ||H||_F^2 + lambda_b/2 ||b||^2

with l any registered loss of `nclab.losses` (its per-sample loss, averaged; note ||H||_F^2 is summed over the
N samples). The run directory, metrics.jsonl keys (`nc_metrics`, or `multilabel_metrics` for pick_all_label;
"epoch" = iteration), figures and `plot` / `compare` are those of a training run.

The closed forms checked at the end: ufm/theory.py.
"""

from nclab.ufm.config import UFMConfig, resolve_ufm
from nclab.ufm.simulate import Simulation, simulate
from nclab.ufm.theory import Check, bce_solution, ce_norm, closed_form_checks, mse_alpha, mse_solution

__all__ = [
    "Check", "Simulation", "UFMConfig", "bce_solution", "ce_norm", "closed_form_checks", "mse_alpha",
    "mse_solution", "resolve_ufm", "simulate",
]  # fmt: skip
