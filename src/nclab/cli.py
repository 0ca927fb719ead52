"""Command line: `nclab train|ufm|runs|measure|plot|visualize|compare|presets|data|models|options ...`.

Errors a user can fix end in one `error: ...` line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from nclab import __version__
from nclab.errors import ConfigError, NclabError


def _list(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


def _epochs(text: str) -> list[int]:
    try:
        return [int(t) for t in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give epochs as integers separated by commas (10,20,30)"
        ) from None


def _resources(text: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in _list(text))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write resources as cpu=1,gpu=0.25") from None


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one `error: ...` line too (argparse would print the usage block first)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message} (see {self.prog} --help)")


class _ComponentsHelp(argparse.Action):
    """`nclab train --help`: the usage, then the registered datasets, models, losses and optimizers."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show this help and the components")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> NoReturn:
        from nclab.config import COMPONENTS, registry

        lines = [f"  {section}: {', '.join(registry(section).names())}" for section in COMPONENTS]
        title = "components (nclab options SECTION [NAME] lists their options):"
        parser.epilog = "\n".join([title, *lines, ""])
        parser.print_help()
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nclab", description="Neural collapse lab")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser(
        "train",
        help="train one run: nclab train [CONFIG.yaml] [key=value ...]",
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tr.add_argument("-h", "--help", action=_ComponentsHelp)
    tr.add_argument("items", nargs="*", help="an optional YAML config file, then key=value overrides")
    tr.add_argument("--preset", help="start from a named preset (see `nclab presets`)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    tr.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue a run from its newest resume state; only epochs=N may be given (extend a run)",
    )
    ru = sub.add_parser("runs", help="one row per run: status, epochs, final accuracy and nc1, disk use")
    ru.add_argument("dir", nargs="?", type=Path, default=Path("runs"), help="default: runs")
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
    pl.add_argument("--y", help="config key on the y axis of heatmap, e.g. train.epochs")
    pl.add_argument("--baseline", help="heatmap: |row - this row| per cell, e.g. loss=ce (Zhou et al. 2022)")
    pl.add_argument(
        "--band", choices=["minmax", "std", "none"], default="minmax", help="seed band: min-max or mean+-std"
    )
    pl.add_argument("--each-seed", action="store_true", help="one line per run instead of one per setting")
    pl.add_argument("--method", choices=["auto", "tsne", "pca"], default="auto", help="embed: as visualize")
    pl.add_argument("--out", type=Path, help="directory for the figure (default: the first run's figures/)")
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
    vi = sub.add_parser("visualize", help="2-D feature plots per epoch + GIF into figures/embed/")
    vi.add_argument("run", type=Path)
    vi.add_argument("--epochs", type=_epochs, help="epochs (default: those with saved features)")
    vi.add_argument(
        "--method", choices=["auto", "tsne", "pca"], default="auto", help="auto: direct if d=2, else t-SNE"
    )
    vi.add_argument("--format", choices=["png", "pdf", "svg"], default="png", help="of the per-epoch frames")
    co = sub.add_parser(
        "compare", help="one row per setting (seeds: mean ± std): differing config keys, final metrics"
    )
    co.add_argument("runs", nargs="+", type=Path)
    co.add_argument("--format", choices=["md", "csv"], default="md")
    co.add_argument("--each-seed", action="store_true", help="one row per run, not mean +- std per setting")
    co.add_argument("--metrics", type=_list, help="final-record keys as columns (default: the summary keys)")
    sw = sub.add_parser("sweep", help="a grid of runs on Ray Tune: nclab sweep FILE.yaml (see README)")
    sw.add_argument("file", type=Path, help="sweep file: base, grid, zip, random, out, resources, retries")
    sw.add_argument("--address", help="an existing Ray cluster (ray://host:10001); default: a local Ray")
    sw.add_argument(
        "--resources", type=_resources, help="per trial, e.g. cpu=1,gpu=0.25 (overrides the file)"
    )
    sw.add_argument("--retries", type=int, help="attempts after a trial's first failure (overrides the file)")
    sw.add_argument("--out", type=Path, help="sweep directory (overrides the file's out)")
    sw.add_argument("--report", action="store_true", help="only the table and figures of the runs so far")
    sw.add_argument(
        "--verbose", "-v", action="count", default=0, help="Ray Tune's tables instead of one line per trial "
        "event; twice (-vv): also the trials' own output",
    )  # fmt: skip
    uf = sub.add_parser(
        "ufm",
        help="unconstrained features model: nclab ufm K=10 d=64 n=50 loss=ce lambda_W=5e-4 lambda_H=5e-4",
    )
    uf.add_argument("items", nargs="*", help="an optional YAML config file, then key=value settings")
    uf.add_argument("--quiet", action="store_true", help="no progress lines")
    pr = sub.add_parser("presets", help="the named presets by study, or one preset's source and config")
    pr.add_argument("name", nargs="?", help="a preset: print what it reproduces and its resolved config")
    da = sub.add_parser("data", help="datasets: nclab data list | nclab data info NAME [key=value ...]")
    da.add_argument("action", choices=["list", "info"])
    da.add_argument(
        "items", nargs="*", help="info: the dataset name, then data.* overrides (e.g. data.root=...)"
    )
    op = sub.add_parser(
        "options", help="components and their options: nclab options [data|model|loss|optim [NAME]]"
    )
    op.add_argument("section", nargs="?", help="data, model, loss or optim")
    op.add_argument("name", nargs="?", help="a component of the section, e.g. focal")
    mo = sub.add_parser("models", help="models with feature dim and parameter count for a dataset's inputs")
    mo.add_argument(
        "items", nargs="*", help="key=value settings, e.g. data=digits head.fixdim=true model=vit"
    )
    mo.add_argument("--input-shape", help="C,H,W (or D) instead of a dataset's shape, e.g. 3,32,32")
    mo.add_argument("--classes", type=int, default=10, help="K with --input-shape (default 10)")
    return parser


def _summary(run, figure: Path) -> None:
    from rich.table import Table

    from nclab.metrics import table as metric_table
    from nclab.output import console

    last = run.metrics()[-1]
    table = Table(title=f"final metrics, epoch {last['epoch']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in metric_table.keys("summary"):
        if last.get(key) is not None:
            table.add_row(key, f"{last[key]:.4g}")
    out = console()
    out.print(f"run directory: {run.path}")
    out.print(table)
    out.print(f"figure: {figure}")


def _file_and_overrides(items: list[str]) -> tuple[str | None, list[str]]:
    """`[CONFIG.yaml] key=value ...` -> (the file or None, the overrides); a key given twice (also as
    `epochs` and `train.epochs`, `loss` and `loss.name`) is an error naming both."""
    from nclab.config import canonical_key, parse_override

    files = [i for i in items if "=" not in i]
    if len(files) > 1:
        raise ConfigError(f"one config file at most, got {files}; write other settings as key=value")
    overrides = [i for i in items if "=" in i]
    seen: dict[str, str] = {}
    for text in overrides:
        key = canonical_key(parse_override(text)[0])
        if key in seen:
            raise ConfigError(f"{seen[key]} and {text}: {key} is given twice; keep one")
        seen[key] = text
    return (files[0] if files else None), overrides


def cmd_train(args: argparse.Namespace) -> None:
    from nclab import distributed
    from nclab.config import resolve
    from nclab.report.plots import plot
    from nclab.train import resume, train

    file, overrides = _file_and_overrides(args.items)
    try:
        if args.resume:
            epochs = _resume_epochs([file] if file else [], overrides, args.preset)
            run = resume(args.resume, epochs, progress=not args.quiet)
        else:
            cfg = resolve(file, overrides, preset=args.preset)
            run = train(cfg, progress=not args.quiet)
    finally:
        distributed.finish()
    if not distributed.is_main():
        return
    figure = plot([run])[0]
    if not args.quiet:
        _summary(run, figure)


def cmd_ufm(args: argparse.Namespace) -> None:
    from nclab.report.plots import plot
    from nclab.ufm import resolve_ufm, simulate

    sim = simulate(resolve_ufm(*_file_and_overrides(args.items)), progress=not args.quiet)
    print(sim.report())
    print(f"figure: {plot([sim.run])[0]}")


def _resume_epochs(files: list[str], overrides: list[str], preset: str | None) -> int | None:
    """The one override --resume takes: epochs=N (or train.epochs=N); anything else would change the run."""
    from nclab.config import parse_override

    extra = files + ([f"--preset {preset}"] if preset else [])
    epochs = None
    for text in overrides:
        key, value = parse_override(text)
        if key not in ("epochs", "train.epochs"):
            extra.append(text)
        elif type(value) is not int or value < 1:
            raise ConfigError(f"{text}: epochs takes a whole number >= 1")
        else:
            epochs = value
    if extra:
        raise ConfigError(
            "--resume continues a run with its own config; only epochs=N may be given, not "
            + _clip(" ".join(extra))
        )
    return epochs


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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
    from nclab.report.plots import plot
    from nclab.runs import load

    x, y = (canonical_key(k) if k else None for k in (args.x, args.y))  # `--y epochs` as in a sweep file
    paths = plot(
        [load(p) for p in args.runs], args.kind, args.format, args.out, band=args.band,
        by_seed=not args.each_seed, metrics=args.metrics, epochs=args.epochs, x=x, y=y,
        baseline=args.baseline, method=args.method,
    )  # fmt: skip
    print("\n".join(map(str, paths)))


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
    done = measure_run(run, args.epochs, args.split)
    print(f"measured epochs {done[0]}..{done[-1]} ({len(done)}) into {run.path / 'measure.jsonl'}")


def _measure_model(args: argparse.Namespace) -> None:
    from rich.table import Table

    from nclab import jsontext
    from nclab.config import resolve
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
        with args.out.open("a") as f:
            f.write(jsontext.dumps({"model": args.model, "data": cfg.data.name} | record) + "\n")
        print(f"record appended to {args.out}")


def cmd_visualize(args: argparse.Namespace) -> None:
    from nclab.report.embed import visualize
    from nclab.runs import load

    paths = visualize(load(args.run), args.epochs, args.method, fmt=args.format)
    print(f"{len(paths) - 1} frames in {paths[0].parent}; animation {paths[-1]}")


def cmd_compare(args: argparse.Namespace) -> None:
    from nclab.report.tables import compare
    from nclab.runs import load

    runs = [load(p) for p in args.runs]
    print(compare(runs, args.format, by_seed=not args.each_seed, metrics=args.metrics), end="")


def cmd_sweep(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from nclab.config import describe
    from nclab.sweep import Resources, SweepResult, load_sweep, report
    from nclab.sweep_tune import TUNE_DIR, run_sweep

    sweep, trials, sweep_dir = load_sweep(args.file, args.out)
    resources = sweep.resources
    if args.resources:
        try:
            resources = Resources.model_validate(resources.model_dump() | args.resources)
        except ValidationError as exc:
            raise ConfigError(f"--resources {describe(exc, Resources)}") from None
    if args.report:
        result = SweepResult(sweep_dir, trials, [], {})
    else:
        print(f"sweep {args.file}: {len(trials)} trials into {sweep_dir}", flush=True)
        result = run_sweep(sweep, trials, sweep_dir, args.address, resources, args.retries, args.verbose)
        if result.skipped:
            print(f"skipped {len(result.skipped)} finished trials: {', '.join(result.skipped)}")
    tracebacks = sweep_dir / TUNE_DIR / "trials"
    if result.failed and len(result.failed) == len(trials) - len(result.skipped):  # nothing to report
        print(f"all {len(result.failed)} trials failed (tracebacks in {tracebacks})", file=sys.stderr)
        first = next(iter(result.failed.values()))
        error = NclabError(first.message)  # the first failing trial's own line and exit code
        error.exit_code = first.exit_code
        raise error
    table, figures = report(result, sweep.report)
    print(table, end="")
    print(f"table: {sweep_dir / 'compare.md'} (.csv); figures: {', '.join(map(str, figures))}")
    if result.failed:
        lines = "; ".join(
            f"{name}: {f.message} (after {f.attempts} attempts; traceback in {tracebacks / name}/error.txt)"
            for name, f in result.failed.items()
        )
        raise NclabError(
            f"{len(result.failed)} of {len(trials)} trials failed ({lines}); their run dirs keep "
            "status.json; fix the cause and rerun the same command to continue them"
        )


def cmd_presets(args: argparse.Namespace) -> None:
    from nclab.config import preset_about, preset_names, resolve
    from nclab.presets import STUDIES, study_of

    if args.name:
        about, cfg = preset_about(args.name), resolve(preset=args.name)
        print(f"{args.name}: {about.get('description', '')}")
        for key in ("source", "series"):
            if about.get(key):
                print(f"{key}: {about[key]}")
        print(f"run: nclab train --preset {args.name} [key=value ...]\n")
        print(cfg.to_yaml(), end="")
        return
    names = preset_names()
    for key, title in [*STUDIES.items(), ("other", "examples")]:
        group = [n for n in names if study_of(n) == key]
        if group:
            print(f"{key}: {title} ({len(group)})")
            width = max(map(len, group))
            for name in group:
                print(f"  {name:<{width}}  {preset_about(name).get('description', '')}")
    print("details and the resolved config: nclab presets NAME")


def cmd_data(args: argparse.Namespace) -> None:
    from rich.table import Table

    from nclab.config import resolve
    from nclab.data import DATASET_INFO
    from nclab.output import console

    def count(n: int | None) -> str:
        return "?" if n is None else f"{n:,}"

    if args.action == "list":
        table = Table(title="datasets (nclab train data=NAME)")
        for column in ("name", "train", "test", "shape", "classes", "description"):
            table.add_column(column)
        for name, info in DATASET_INFO.items():
            shape = "x".join(map(str, info.shape))
            table.add_row(name, count(info.train), count(info.test), shape, str(info.classes), info.summary)
        console().print(table)
        return
    if not args.items or "=" in args.items[0]:
        raise ConfigError(f"nclab data info needs a dataset name, one of: {', '.join(DATASET_INFO)}")
    name, overrides = args.items[0], args.items[1:]
    cfg = resolve(None, [f"data.name={name}", *overrides]).data
    info = DATASET_INFO[name]
    where = info.where(cfg)
    print(f"{name}: {info.summary}")
    print(f"train {count(info.train)}, test {count(info.test)}, shape {info.shape}, {info.classes} classes")
    print(
        f"files: {where} ({'present' if Path(where).exists() else 'absent: built or fetched on first use'})"
    )


def cmd_models(args: argparse.Namespace) -> None:
    """Every model (or the one `model=NAME` asks for) with d and its parameter count; without a model
    chosen, each model gets the given model.* keys it takes (`model.stem=imagenet`: the ResNets)."""
    from rich.table import Table

    from nclab.config import component_section, parse_override, resolve
    from nclab.models import MODELS, describe
    from nclab.output import console

    pairs = [parse_override(i) for i in args.items]
    chosen = any(key in ("model", "model.name") for key, _ in pairs)
    given = {k.removeprefix("model."): v for k, v in pairs if k.startswith("model.") and k != "model.name"}
    takers = {n: [k for k in given if k in MODELS.options(n).model_fields] for n in MODELS.names()}
    if not chosen:
        if unknown := [k for k in given if not any(k in keys for keys in takers.values())]:
            raise ConfigError(f"model.{unknown[0]}: no model takes this key (nclab options model)")
        args.items = [
            i for i, (key, _) in zip(args.items, pairs, strict=True) if not key.startswith("model.")
        ]
    cfg = resolve(None, args.items)
    shape, k, source = _model_inputs(args, cfg)
    table = Table(title=f"models for {source}")
    for column in ("model", "d", "parameters", "note"):
        table.add_column(column, justify="right" if column in ("d", "parameters") else "left")
    for name in [cfg.model.name] if chosen else MODELS.names():
        try:
            if not chosen:  # each model with the given keys it takes (model.width=0.5: every width)
                cfg.model = component_section("model", {k: given[k] for k in takers[name]} | {"name": name})
            d, n = describe(cfg, shape, k)
            ignored = sorted(set(given) - set(takers[name])) if not chosen else []
            table.add_row(name, str(d), f"{n:,}", f"takes no {', '.join(ignored)}" if ignored else "")
        except ConfigError as exc:
            if chosen:  # the one model asked for: its problem is the answer
                raise
            table.add_row(name, "-", "-", str(exc))
    console().print(table)


def _model_inputs(args: argparse.Namespace, cfg) -> tuple[tuple[int, ...], int, str]:
    """(input shape, K, a title) from --input-shape/--classes or the config's dataset."""
    if args.input_shape:
        try:
            shape = tuple(int(s) for s in args.input_shape.split(","))
        except ValueError:
            raise ConfigError(
                f"--input-shape {args.input_shape!r}: write C,H,W as integers, e.g. 3,32,32"
            ) from None
        return shape, args.classes, f"input {args.input_shape}, K={args.classes}"
    from nclab.data import DATASET_INFO

    info = DATASET_INFO[cfg.data.name]
    shape, k = info.input_shape(cfg.data), info.classes
    return shape, k, f"data={cfg.data.name}: input {','.join(map(str, shape))}, K={k}"


def _type_name(annotation) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _doc(options) -> str:
    return (options.__doc__ or "").strip().splitlines()[0]


def cmd_options(args: argparse.Namespace) -> None:
    from rich.table import Table

    from nclab.config import COMPONENTS, registry
    from nclab.output import console

    if args.section is None:
        for section in COMPONENTS:
            print(f"{section}: {', '.join(registry(section).names())}")
        return
    if args.section not in COMPONENTS:
        raise ConfigError(f"nclab options {args.section}: choose a section from {', '.join(COMPONENTS)}")
    reg = registry(args.section)
    if args.name is None:
        table = Table(
            title=f"{args.section} (nclab train {args.section}=NAME; nclab options {args.section} NAME)"
        )
        table.add_column("name")
        table.add_column("own options")
        table.add_column("description")
        for name in reg.names():
            options = reg.options(name)
            own = [k for k in options.model_fields if k not in reg.base.model_fields]
            table.add_row(name, ", ".join(own), _doc(options))
        console().print(table)
        return
    options = reg.options(args.name)
    table = Table(title=f"{args.section}={args.name}: {_doc(options)}")
    for column in ("key", "type", "default", "description"):
        table.add_column(column)
    fields, common = options.model_fields, reg.base.model_fields
    own = [k for k in fields if k not in common or fields[k].default != common[k].default]
    for key in own + [k for k in fields if k not in own]:
        if key == "name":
            continue
        field = fields[key]
        default = field.get_default(call_default_factory=True)
        table.add_row(
            f"{args.section}.{key}", _type_name(field.annotation), repr(default), field.description or ""
        )
    console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = _parser()
        args, extra = parser.parse_known_args(argv)  # key=value after a flag: `--quiet seed=0`
        if extra:
            if not hasattr(args, "items") or any(e.startswith("-") for e in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.items += extra
        commands = {
            "train": cmd_train, "plot": cmd_plot, "measure": cmd_measure, "visualize": cmd_visualize,
            "compare": cmd_compare, "sweep": cmd_sweep, "presets": cmd_presets, "data": cmd_data,
            "models": cmd_models, "ufm": cmd_ufm, "runs": cmd_runs, "options": cmd_options,
        }  # fmt: skip
        commands[args.command](args)
    except NclabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "error: interrupted; finished epochs and checkpoints are kept in the run directory",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
