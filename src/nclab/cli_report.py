"""`nclab runs|plot|measure|visualize|compare`: the commands that read run directories (cli.py builds the
parser and reports errors)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from nclab.errors import ConfigError

if TYPE_CHECKING:
    from nclab.runs import Run


def _list(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


def _epochs(text: str) -> list[int]:
    try:
        return [int(t) for t in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give epochs as integers separated by commas (10,20,30)"
        ) from None


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`runs`, `plot`, `measure`, `visualize`, `compare`: commands that read run directories."""
    ru = sub.add_parser("runs", help="one row per run: status, epochs, final accuracy and nc1, disk use")
    ru.add_argument("dir", nargs="?", type=Path, default=Path("runs"), help="default: runs")
    ru.set_defaults(handler=cmd_runs)
    pl = sub.add_parser("plot", help="figures of runs (seeds averaged), into the first run's figures/")
    pl.add_argument("runs", nargs="+", type=Path)
    pl.add_argument(
        "--kind",
        choices=["nc", "curves", "grid", "heatmap", "scores", "embed", "frequency", "correlate"],
        default="nc",
        help="nc: overview (default); curves: --metrics; grid: NC1-NC4 2x2; heatmap: final metrics over "
        "--x and --y; scores: violins per epoch or against --x; embed: 2-D feature frames + GIF; frequency: "
        "per-class vectors vs frequency rank; correlate: final --metrics vs test loss, Spearman/Pearson",
    )
    pl.add_argument("--format", choices=["png", "pdf", "svg"], default="png", help="pdf/svg are vector")
    pl.add_argument("--metrics", type=_list, help="metrics.jsonl keys for curves and heatmap (nc1,nc2_h,...)")
    pl.add_argument("--epochs", type=_epochs, help="epochs for scores and embed (default: evenly spaced)")
    pl.add_argument("--x", help="config key on the x axis of heatmap and scores, e.g. model.width")
    pl.add_argument("--y", help="config key on the y axis of heatmap, e.g. train.epochs or epochs")
    pl.add_argument("--baseline", help="heatmap: |row - this row| per cell, e.g. loss=ce (Zhou et al. 2022)")
    pl.add_argument(
        "--band", choices=["minmax", "std", "none"], default="minmax", help="seed band: min-max or mean+-std"
    )
    pl.add_argument("--each-seed", action="store_true", help="one line per run instead of one per setting")
    pl.add_argument("--method", choices=["auto", "tsne", "pca"], default="auto", help="embed: as visualize")
    pl.add_argument("--out", type=Path, help="directory for the figure (default: the first run's figures/)")
    pl.set_defaults(handler=cmd_plot)
    _measure_parser(sub)
    vi = sub.add_parser("visualize", help="2-D feature plots per epoch + GIF into figures/embed/")
    vi.add_argument("run", type=Path)
    vi.add_argument("--epochs", type=_epochs, help="epochs (default: those with saved features)")
    vi.add_argument(
        "--method", choices=["auto", "tsne", "pca"], default="auto", help="auto: direct if d=2, else t-SNE"
    )
    vi.add_argument("--format", choices=["png", "pdf", "svg"], default="png", help="of the per-epoch frames")
    vi.set_defaults(handler=cmd_visualize)
    co = sub.add_parser(
        "compare", help="one row per setting (seeds: mean ± std): differing config keys, final metrics"
    )
    co.add_argument("runs", nargs="+", type=Path)
    co.add_argument("--format", choices=["md", "csv"], default="md")
    co.add_argument("--each-seed", action="store_true", help="one row per run, not mean +- std per setting")
    co.add_argument(
        "--metrics",
        type=_list,
        help="final-record keys: the columns, or with --correlate the metrics correlated",
    )
    co.add_argument(
        "--correlate",
        action="store_true",
        help="instead: final --metrics (default cdnv,nc1,nc2_h,test_nc4_ncc) vs final test loss across the "
        "runs, Spearman rho, Pearson r and n per metric (and --x value)",
    )
    co.add_argument("--x", help="with --correlate: one row per value of this config key, e.g. model.depth")
    co.set_defaults(handler=cmd_compare)


def _measure_parser(sub: argparse._SubParsersAction) -> None:
    me = sub.add_parser(
        "measure",
        help="recompute metrics from a run's checkpoints into measure.jsonl, or measure a timm model: "
        "nclab measure --model timm:resnet18 data=cifar10 [key=value ...]",
    )
    me.add_argument("items", nargs="*", help="a run directory; with --model: key=value settings (data=...)")
    me.add_argument("--epochs", type=_epochs, help="checkpoint epochs, e.g. 10,20,30 (default: all saved)")
    me.add_argument("--split", type=_list, default=["train", "test"], help="train,test (default both)")
    me.add_argument(
        "--model",
        help="timm:NAME (weights from --weights or the timm/Hugging Face cache), or hf:DIR, a local "
        "Hugging Face causal LM measured on data=text",
    )
    me.add_argument("--weights", type=Path, help="--model: a state dict (.safetensors, .pth) to load")
    me.add_argument("--layer", help="--model: the module whose input is h (default: the model's classifier)")
    me.add_argument("--out", type=Path, help="--model: also write the record as one JSON line to this file")
    me.set_defaults(handler=cmd_measure)


def cmd_runs(args: argparse.Namespace) -> None:
    from rich.table import Table

    from nclab.output import console
    from nclab.report.tables import run_rows

    rows = run_rows(args.dir)
    table = Table(title=f"runs in {args.dir}")
    for column in rows[0] if rows else ["run"]:
        table.add_column(column, justify="left" if column in ("run", "status") else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    console().print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_plot(args: argparse.Namespace) -> None:
    from nclab.config import canonical_key
    from nclab.report.plots import caption, plot
    from nclab.runs import load

    runs = [load(p) for p in args.runs]
    if args.kind == "embed":
        for run in runs:
            with run.lock():  # it may write features into the run: refused while training holds it
                print("\n".join(map(str, _embed(run, args.epochs, args.method, args.format, args.out))))
        return
    x, y = (canonical_key(k) if k else None for k in (args.x, args.y))  # `--y epochs` as in a sweep file
    options = dict(band=args.band, by_seed=not args.each_seed, metrics=args.metrics, x=x, y=y,
                   baseline=args.baseline)  # fmt: skip
    print("\n".join(map(str, plot(runs, args.kind, args.format, args.out, epochs=args.epochs, **options))))
    print(caption(runs, args.kind, **options))


def _embed(run: Run, epochs: list[int] | None, method: str, fmt: str, out: Path | None) -> list[Path]:
    """Feature frames and GIF of `run` (report/embed.py reads only): the chosen epochs without saved
    features are measured from their checkpoints and saved first (Run.save_measured)."""
    from nclab.remeasure import measure_checkpoints
    from nclab.report.embed import feature_epochs, visualize

    epochs, missing = feature_epochs(run, epochs)
    for epoch, measured in measure_checkpoints(run, missing, features=True) if missing else []:
        run.save_measured(epoch, {"features": measured.features})
    return visualize(run, epochs, method, fmt=fmt, out=out and out / run.name)


def cmd_measure(args: argparse.Namespace) -> None:
    if args.model:
        _measure_model(args)
        return
    from nclab.remeasure import measure_run
    from nclab.runs import load

    if len(args.items) != 1 or "=" in args.items[0]:
        raise ConfigError(
            "nclab measure takes one run directory (or --model timm:NAME with key=value settings)"
        )
    run = load(Path(args.items[0]))
    with run.lock():  # a second writer: refused while training (or another measure) holds the run
        done = measure_run(run, args.epochs, args.split)
    print(f"measured epochs {done[0]}..{done[-1]} ({len(done)}) into {run.path / 'measure.jsonl'}")


def _measure_model(args: argparse.Namespace) -> None:
    from rich.table import Table

    from nclab import jsontext
    from nclab.config import resolve
    from nclab.files import append_line
    from nclab.output import console
    from nclab.remeasure import measure_pretrained

    if any("=" not in i for i in args.items):
        raise ConfigError(f"with --model, give settings as key=value (data=cifar10), not {args.items}")
    cfg = resolve(None, args.items)
    record, note = measure_pretrained(cfg, args.model, args.weights, args.layer, args.split)
    table = Table(title=f"{args.model} on {cfg.data.name}" + (f" ({note})" if note else ""))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in record.items():
        table.add_row(key, "null" if value is None else f"{value:.6g}")
    console().print(table)
    if args.out:
        append_line(args.out, jsontext.dumps({"model": args.model, "data": cfg.data.name} | record) + "\n")
        print(f"record appended to {args.out}")


def cmd_visualize(args: argparse.Namespace) -> None:
    from nclab.runs import load

    run = load(args.run)
    with run.lock():  # it writes into the run: refused while training holds it
        paths = _embed(run, args.epochs, args.method, args.format, None)
    print(f"{len(paths) - 1} frames in {paths[0].parent}; animation {paths[-1]}")


def cmd_compare(args: argparse.Namespace) -> None:
    from nclab.report.tables import compare
    from nclab.runs import load

    if not args.correlate and args.x is not None:
        raise ConfigError("--x groups the rows of --correlate; give --correlate too")
    if args.correlate and args.each_seed:
        raise ConfigError("--correlate has a row per metric, not per run; drop --each-seed")
    runs = [load(p) for p in args.runs]
    table = compare(runs, args.format, not args.each_seed, args.metrics, args.correlate, args.x)
    print(table, end="")
