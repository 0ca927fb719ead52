"""The one table of metric keys: every key a run writes to metrics.jsonl is declared here once, and the
TensorBoard tags (`tag`), the progress line, the end-of-run summary, `nclab compare` and `nclab plot` read it.

A new metric is one call, in any module imported before the run starts:

    register_metric("my_margin", "geometry", "mean logit margin z_y - max_{k!=y} z_k", "my paper 2026",
                    symbol=r"$\bar m$", summary=True, curve=True)

A metric that needs per-epoch state names its class (`metrics.epoch.EpochMetric`: update per batch, result
per split) with `state=` ("module:Class", imported when an epoch is measured, or the class itself); every
measured epoch then reports it for each split (the test split's key prefixed `test_`, declared beside it).
`classifier=True` marks the keys that need W (null without a classifier), `depth=True` the classifier-free
keys reported for every tapped layer as `<layer>/<key>` (`measure.layers`).

A key may name a family with one `*` (`score_pos_*` for score_pos_mean, score_pos_q05, ...); an exact
declaration wins over a family. `symbol` names the key on figure axes in short mathtext (a family member's
label appends what its `*` stands for); the `description` goes to captions and TensorBoard. Looking up an
undeclared key raises, so a metric nobody declared is an error (in the tests and at the first measured
epoch), never a silently misfiled TensorBoard tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from nclab.errors import NclabError

__all__ = ["METRICS", "Metric", "keys", "metric", "register_metric", "stateful", "tag"]

Flag = Literal["progress", "summary", "curve", "log", "classifier", "depth"]


@dataclass(frozen=True)
class Metric:
    """One metrics.jsonl key (or key family) and where it is shown."""

    key: str  # exact key, or a family with one `*` ("score_pos_*")
    group: str  # TensorBoard tag `<group>/<key>`
    description: str  # one line: what the number is (formula)
    source: str = ""  # the paper that defines it ("nclab" for our own definitions)
    log: bool = False  # plotted on a log axis
    progress: bool = False  # on the training progress line
    summary: bool = False  # a column of `nclab compare` and the end-of-training table
    curve: bool = False  # a default panel of `nclab plot --kind curves`
    classifier: bool = False  # needs W: null for models and losses without a linear classifier
    depth: bool = False  # also reported per tapped layer as `<layer>/<key>` (classifier-free)
    state: str | type | None = None  # per-epoch state: an `EpochMetric` class or "module:Class"
    symbol: str = ""  # short mathtext for figure axes ("$\\mathcal{NC}_1$"); figures show the key without one


METRICS: dict[str, Metric] = {}


def register_metric(
    key: str,
    group: str,
    description: str,
    source: str = "",
    *,
    log: bool = False,
    progress: bool = False,
    summary: bool = False,
    curve: bool = False,
    classifier: bool = False,
    depth: bool = False,
    state: str | type | None = None,
    symbol: str = "",
) -> Metric:
    """Declare a metric key (or a `*` family); declaring the same key twice is an error."""
    if key in METRICS:
        raise ValueError(f"metric {key!r} declared twice")
    if key.count("*") > 1:
        raise ValueError(f"metric family {key!r} may hold one `*`")
    METRICS[key] = Metric(
        key, group, description, source, log, progress, summary, curve, classifier, depth, state, symbol
    )
    return METRICS[key]


def metric(key: str) -> Metric:
    """The declaration of `key`: its exact entry, else the first family whose pattern matches."""
    if key in METRICS:
        return METRICS[key]
    for m in METRICS.values():
        if "*" in m.key and fnmatchcase(key, m.key):
            return m
    raise NclabError(
        f"metric key {key!r} is not declared; declare it once with "
        "nclab.metrics.table.register_metric(key, group, description, source)"
    )


def tag(key: str) -> str:
    """TensorBoard tag `<group>/<key>`."""
    return f"{metric(key).group}/{key}"


def keys(flag: Flag) -> list[str]:
    """Exact keys with `flag` set, in declaration order (e.g. keys("summary") are compare's columns)."""
    return [m.key for m in METRICS.values() if "*" not in m.key and getattr(m, flag)]


def stateful() -> list[Metric]:
    """The metrics with per-epoch state (`state=`), in declaration order."""
    return [m for m in METRICS.values() if m.state is not None]


P20, Z21, Z22 = "Papyan et al. 2020", "Zhu et al. 2021", "Zhou et al. 2022"
BCE25, LI23, OURS = "BCE vs CE 2025", "Li et al. 2023", "nclab"

# run and optimisation
register_metric(
    "epoch", "run", "1-based epoch the record was measured after (nclab ufm: iterations done, from 0)",
    symbol=r"$t$",
)  # fmt: skip
register_metric(
    "lr", "optim", "learning rate of the first parameter group during the epoch", symbol=r"$\eta$",
)  # fmt: skip
register_metric(
    "objective", "loss",
    "nclab ufm: mean loss + lambda_W/2 ||W||_F^2 + lambda_H/2 ||H||_F^2 + lambda_b/2 ||b||^2", Z21,
    summary=True, symbol=r"$\mathcal{L}_{\mathrm{UFM}}$",
)  # fmt: skip
register_metric(
    "grad_norm", "optim", "nclab ufm: norm of the objective's gradient over H, W, b (and centres)",
    symbol=r"$\|\nabla\mathcal{L}_{\mathrm{UFM}}\|$",
)  # fmt: skip
# losses
register_metric(
    "train_loss", "loss", "mean per-sample loss on the train split, eval mode", progress=True, summary=True,
    symbol=r"$\mathcal{L}_{\mathrm{train}}$",
)  # fmt: skip
register_metric(
    "test_loss", "loss", "mean per-sample loss on the test split, eval mode", summary=True,
    symbol=r"$\mathcal{L}_{\mathrm{test}}$",
)  # fmt: skip
register_metric(
    "step_loss", "loss", "mean train-mode loss seen during the epoch's steps (augmented)",
    symbol=r"$\mathcal{L}_{\mathrm{step}}$",
)  # fmt: skip
# accuracies
register_metric(
    "train_acc", "accuracy", "train accuracy of the loss's prediction rule", progress=True, summary=True,
    curve=True, symbol=r"$\mathrm{acc}_{\mathrm{train}}$",
)  # fmt: skip
register_metric(
    "test_acc", "accuracy", "test accuracy of the loss's prediction rule", progress=True, summary=True,
    curve=True, symbol=r"$\mathrm{acc}_{\mathrm{test}}$",
)  # fmt: skip
register_metric(
    "val_acc", "accuracy", "accuracy on the held-out validation split", Z22, summary=True,
    symbol=r"$\mathrm{acc}_{\mathrm{val}}$",
)  # fmt: skip
register_metric(
    "step_acc", "accuracy", "train-mode accuracy seen during the epoch's steps",
    symbol=r"$\mathrm{acc}_{\mathrm{step}}$",
)  # fmt: skip
register_metric(
    "ncc_acc", "accuracy", "accuracy of the nearest train class mean, train split", P20, summary=True,
    depth=True, symbol=r"$\mathrm{acc}_{\mathrm{NCC}}$",
)  # fmt: skip
register_metric(
    "test_ncc_acc", "accuracy", "accuracy of the nearest train class mean, test split", P20, summary=True,
    depth=True, symbol=r"$\mathrm{acc}_{\mathrm{NCC}}^{\mathrm{test}}$",
)  # fmt: skip
register_metric(
    "center_acc", "accuracy", "accuracy of the nearest learned center, train split", "Wen et al. 2016",
    symbol=r"$\mathrm{acc}_{\mathrm{center}}$",
)  # fmt: skip
register_metric(
    "test_center_acc", "accuracy", "accuracy of the nearest learned center, test split", "Wen et al. 2016",
    symbol=r"$\mathrm{acc}_{\mathrm{center}}^{\mathrm{test}}$",
)  # fmt: skip
register_metric(
    "iou", "accuracy", "mean softmax mass on the true label set, train split", LI23,
    symbol=r"$\mathrm{IoU}$",
)  # fmt: skip
register_metric(
    "test_iou", "accuracy", "mean softmax mass on the true label set, test split", LI23,
    symbol=r"$\mathrm{IoU}^{\mathrm{test}}$",
)  # fmt: skip
# neural collapse
register_metric(
    "nc1", "nc", "tr(Sigma_W Sigma_B^+) / K", "all seeds", log=True, progress=True, summary=True, curve=True,
    depth=True, symbol=r"$\mathcal{NC}_1$",
)  # fmt: skip
register_metric(
    "test_nc1", "nc", "nc1 on the test split with test means", Z22, log=True, summary=True, depth=True,
    symbol=r"$\mathcal{NC}_1^{\mathrm{test}}$",
)  # fmt: skip
register_metric(
    "nc2_h", "nc", "ETF(Hbar): centred class means vs the simplex ETF", P20, summary=True, curve=True,
    depth=True, symbol=r"$\mathcal{NC}_2(\bar H)$",
)  # fmt: skip
register_metric(
    "nc2_w", "nc", "ETF(W): classifier rows vs the simplex ETF", Z21, summary=True, curve=True,
    classifier=True, symbol=r"$\mathcal{NC}_2(W)$",
)  # fmt: skip
register_metric(
    "nc2_w_centered", "nc", "ETF(W - 1 wbar^T)", Z22, classifier=True,
    symbol=r"$\mathcal{NC}_2(W - \mathbf{1}\bar w^\top)$",
)  # fmt: skip
register_metric(
    "nc3", "nc", "|| W Hbar^T / ||W Hbar^T||_F - E_K ||_F", Z21, summary=True, curve=True, classifier=True,
    symbol=r"$\mathcal{NC}_3$",
)  # fmt: skip
register_metric(
    "nc3_centered", "nc", "NC3 with W's rows centred: W - 1 wbar^T for W", Z22, classifier=True,
    symbol=r"$\mathcal{NC}_3(W - \mathbf{1}\bar w^\top)$",
)  # fmt: skip
register_metric(
    "nc3_duality", "nc", "|| W/||W||_F - Hbar/||Hbar||_F ||_F", P20, summary=True, classifier=True,
    symbol=r"$\mathcal{NC}_3^{\mathrm{dual}}$",
)  # fmt: skip
register_metric(
    "nc4_bias", "nc", "|| W mu_G + b ||_2", Z21, summary=True, classifier=True, symbol=r"$\|W\mu_G + b\|_2$",
)  # fmt: skip
register_metric(
    "nc4_ncc", "nc", "fraction where nearest class mean != network prediction", P20, summary=True,
    curve=True, symbol=r"$\mathcal{NC}_4$",
)  # fmt: skip
register_metric(
    "cdnv", "nc", "mean_{k!=j} (V_k + V_j) / (2 ||mu_k - mu_j||^2)", "Galanti et al. 2022", log=True,
    summary=True, depth=True, symbol=r"$\mathrm{CDNV}$",
)  # fmt: skip
# neural collapse, issue 11 (formulas and sources: docs/metrics.md)
register_metric(
    "nc1_tr", "nc", "tr(Sigma_W) / tr(Sigma_B)", "Tirer et al. 2023", log=True, curve=True, depth=True,
    symbol=r"$\mathrm{tr}\,\Sigma_W / \mathrm{tr}\,\Sigma_B$",
)  # fmt: skip
register_metric(
    "nc1_tr_class_max", "nc", "max_k V_k / tr(Sigma_B), V_k = tr(Sigma_k) (vector nc1_class in classes/)",
    "Tirer et al. 2023", log=True, depth=True, symbol=r"$\max_k V_k / \mathrm{tr}\,\Sigma_B$",
)  # fmt: skip
register_metric(
    "cdnv_std", "nc", "std (ddof=1) over pairs k<j of the CDNV", "Galanti et al. 2022", log=True, depth=True,
    symbol=r"$\mathrm{std}\ \mathrm{CDNV}$",
)  # fmt: skip
register_metric(
    "cdnv_max", "nc", "max over pairs k<j of the CDNV", "Galanti et al. 2022", log=True, depth=True,
    symbol=r"$\max\ \mathrm{CDNV}$",
)  # fmt: skip
register_metric(
    "cdnv4", "nc", "mean_{k<j} (V_k + V_j) / (2 ||mu_k - mu_j||^4): distance exponent 4",
    "Galanti et al. 2023; Wu & Papyan 2024", log=True, depth=True, symbol=r"$\mathrm{CDNV}_4$",
)  # fmt: skip
HUG = "Liu et al. 2023 (HUG)"
register_metric(
    "nc2_energy_log", "nc", "mean_{k<j} log(1 / ||u_k - u_j||), u_k = (mu_k - mu_G)/||.||", HUG, depth=True,
    symbol=r"$E_{\log}$",
)  # fmt: skip
register_metric(
    "nc2_energy_riesz", "nc", "mean_{k<j} ||u_k - u_j||^-1 (Riesz s-energy, s = 1)", HUG, depth=True,
    symbol=r"$E_{\mathrm{Riesz}}$",
)  # fmt: skip
register_metric(
    "nc2_energy_gauss", "nc", "mean_{k<j} exp(-2 ||u_k - u_j||^2) (Gaussian kernel)", HUG, depth=True,
    symbol=r"$E_{\mathrm{Gauss}}$",
)  # fmt: skip
register_metric(
    "nc3_uniform", "nc", "|std_k / mean_k| of w_k . (mu_k - mu_G): uniform duality", "Wu & Papyan 2024",
    classifier=True, symbol=r"$\mathcal{NC}_3^{\mathrm{unif}}$",
)  # fmt: skip
register_metric(
    "nc3_cos_mean", "nc", "mean_k cos(w_k, mu_k - mu_G) (vector nc3_cos in classes/)", P20, classifier=True,
    symbol=r"$\mathrm{mean}_k \cos(w_k, \mu_k)$",
)  # fmt: skip
register_metric(
    "nc3_cos_min", "nc", "min_k cos(w_k, mu_k - mu_G)", P20, classifier=True,
    symbol=r"$\min_k \cos(w_k, \mu_k)$",
)  # fmt: skip
register_metric(
    "nc4_ncc_class_max", "nc", "max over classes of the class's nc4_ncc (vector nc4_ncc in classes/)", P20,
    symbol=r"$\max_k \mathcal{NC}_4^{(k)}$",
)  # fmt: skip
register_metric(
    "nc4_ncc_class_mean", "nc", "class-balanced mean of the per-class nc4_ncc", P20,
    symbol=r"$\mathrm{mean}_k \mathcal{NC}_4^{(k)}$",
)  # fmt: skip
register_metric(
    "test_nc4_ncc", "nc", "nc4_ncc on the test split, nearest centre with the train means", P20,
    symbol=r"$\mathcal{NC}_4^{\mathrm{test}}$",
)  # fmt: skip
register_metric(
    "nc5", "nc", "mean_k |cos(mu_k, mu_G^OOD)|: ID/OOD orthogonality (measure.ood)",
    "Ammar et al. 2024 (NECO)", symbol=r"$\mathcal{NC}_5$",
)  # fmt: skip
register_metric(
    "classes_empty", "run", "declared classes without train samples, skipped (measure.strict)", OURS,
    depth=True, symbol=r"$K_{\emptyset}$",
)  # fmt: skip
# language models (data=text; formulas and the paper's names: docs/metrics.md)
LC24, DISP25 = "Wu & Papyan 2024 (Linguistic Collapse)", "Li et al. 2025 (representation dispersion)"
register_metric(
    "log_kern_var", "nc", "var_{k<j} log(1 / ||u_k - u_j||), u_k = unit(mu_k - mu_G): GNC2 spread", LC24,
    log=True, symbol=r"$\mathrm{var}_{k<j} \log\|u_k - u_j\|^{-1}$",
)  # fmt: skip
register_metric(
    "log_kern_coincident", "nc", "pairs k<j left out of log_kern_var: ||u_k - u_j||^2 <= 1e-12 (parallel)",
    OURS, symbol=r"$n_{u_k = u_j}$",
)  # fmt: skip
register_metric(
    "norms_log_var", "nc", "var_k log ||mu_k - mu_G||: log-norm equinorm", LC24, log=True,
    symbol=r"$\mathrm{var}_k \log\|\mu_k - \mu_G\|$",
)  # fmt: skip
register_metric(
    "simcos_var", "nc", "var_k cos(w_k, mu_k - mu_G): UNC3 on cosines", LC24, log=True,
    symbol=r"$\mathrm{var}_k \cos(w_k, \mu_k)$",
)  # fmt: skip
register_metric(
    "dispersion", "geometry", "1 - mean_{i<j} cos(h_i, h_j) over the split's features", DISP25,
    symbol=r"$\mathrm{disp}$",
)  # fmt: skip
register_metric(
    "test_dispersion", "geometry", "dispersion of the test split's features", DISP25,
    symbol=r"$\mathrm{disp}^{\mathrm{test}}$",
)  # fmt: skip
register_metric(
    "classes_dropped", "run", "train classes left out by measure.min_count / measure.top_k", OURS,
    symbol=r"$K_{\mathrm{dropped}}$",
)  # fmt: skip
register_metric(
    "samples_dropped", "run", "train samples (tokens) of the classes left out", OURS,
    symbol=r"$N_{\mathrm{dropped}}$",
)  # fmt: skip
# frequency-rank bins of the classes/ vectors (measure.frequency_bins; metrics.lm.frequency_summaries)
register_metric(
    "rank_bin*", "frequency", "geometric centre rank sqrt(lo (hi - 1)) of log-spaced frequency-rank bin i",
    LC24, symbol=r"$r$",
)  # fmt: skip
for vector, what, v in (
    ("counts", "train samples per class", r"n_k"),
    ("nc1_class", "V_k / tr(Sigma_B)", r"V_k/\mathrm{tr}\,\Sigma_B"),
    ("nc3_cos", "cos(w_k, mu_k - mu_G)", r"\cos(w_k, \mu_k)"),
    ("nc4_ncc", "per-class NC4 disagreement", r"\mathcal{NC}_4^{(k)}"),
    ("mean_norm", "||mu_k - mu_G||", r"\|\mu_k - \mu_G\|"),
    ("w_norm", "||w_k||", r"\|w_k\|"),
):  # fmt: skip
    register_metric(
        f"{vector}_bin*", "frequency", f"mean over the classes of frequency-rank bin i of {what}", LC24,
        classifier=vector in ("nc3_cos", "w_norm"), symbol=rf"${v}$ bin",
    )  # fmt: skip
# geometry
for side, rows, v in (("h", "centred class means", r"\mu"), ("w", "classifier rows", "w")):
    flags = {"classifier": True} if side == "w" else {"depth": True}
    register_metric(
        f"equinorm_{side}", "geometry", f"std/mean of the norms of the {rows}", P20, **flags,
        symbol=rf"$\mathrm{{CV}}\,\|{v}_k\|$",
    )  # fmt: skip
    register_metric(
        f"equiangle_{side}", "geometry", f"std (ddof=1) of the cosines of the {rows} over pairs k<j", P20,
        **flags, symbol=rf"$\mathrm{{std}}\,\cos({v}_k, {v}_j)$",
    )  # fmt: skip
    register_metric(
        f"maxangle_{side}", "geometry", f"mean | cos + 1/(K-1) | over pairs of {rows}", P20, **flags,
        symbol=rf"$|\cos({v}_k, {v}_j) + \frac{{1}}{{K-1}}|$",
    )  # fmt: skip
register_metric(
    "compactness", "geometry", "mean_i cos(h_i - mu_G, mu_{y_i} - mu_G)", OURS,
    symbol=r"$\mathrm{mean}_i \cos(h_i, \mu_{y_i})$",
)  # fmt: skip
register_metric(
    "distinctiveness", "geometry", "min angle (degrees) between centred class means", OURS, depth=True,
    symbol=r"$\min \angle(\mu_k, \mu_j)$ (deg)",
)  # fmt: skip
# decision scores (train split)
register_metric(
    "score_pos_*", "scores", "positive scores w_y . h: mean, std, quantiles q05..q95", BCE25,
    symbol=r"$s_{i,y_i}$",
)  # fmt: skip
register_metric(
    "score_neg_*", "scores", "negative scores w_k . h, k != y: mean, std, quantiles", BCE25,
    symbol=r"$s_{i,k\neq y_i}$",
)  # fmt: skip
register_metric(
    "bias_*", "scores", "classifier biases b_k as stored: mean, std, quantiles", BCE25, symbol=r"$b_k$",
)  # fmt: skip
register_metric(
    "bias_sign", "scores", "s of the logits z = W h + s b (-1: the BCE study's z = W h - b)", BCE25,
    symbol=r"$\mathrm{sgn}\,b$",
)  # fmt: skip
register_metric(
    "uniform_acc", "scores", "max_t fraction with z_y > t > max_{k!=y} z_k (one threshold)", BCE25,
    symbol=r"$\mathrm{acc}_{\mathrm{unif}}$",
)  # fmt: skip
register_metric(
    "uniform_threshold", "scores", "a threshold t attaining uniform_acc", BCE25, symbol=r"$t^{*}$",
)  # fmt: skip
# multi-label
register_metric(
    "tagwise_angle", "multilabel", "mean angle(mu_S, mu_a + mu_b) over pair sets, normalised", LI23,
    symbol=r"$\angle(\mu_S, \mu_a + \mu_b)$",
)  # fmt: skip
register_metric(
    "tagwise_coef", "multilabel", "mean c_S = <mu_S, mu_a + mu_b> / ||mu_a + mu_b||^2", LI23,
    symbol=r"$c_S$",
)  # fmt: skip
register_metric(
    "tagwise_coef_std", "multilabel", "std of c_S over pair sets", LI23, symbol=r"$\mathrm{std}\ c_S$",
)  # fmt: skip
register_metric(
    "tagwise_residual", "multilabel", "mean ||mu_S - c_S (mu_a + mu_b)|| / ||mu_S||", LI23, symbol=r"$r_S$",
)  # fmt: skip
# NC across depth (measure.layers): the classifier-free keys of a tapped module's pooled output
for base in keys("depth"):
    declared = METRICS[base]
    register_metric(
        f"*/{base}", "depth", f"{base} of the layer's output: {declared.description}",
        f"{declared.source}; depth: Rangamani et al. 2023, He & Su 2023", log=declared.log,
        symbol=declared.symbol,
    )  # fmt: skip
