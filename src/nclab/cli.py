"""Command line: `nclab train|ufm|sweep|runs|measure|plot|visualize|compare|presets|data|models|options ...`.
This module builds the parser and runs `train`, `ufm` and `sweep`; cli_report.py holds the commands that
read run directories, cli_info.py those that list what there is to choose from.

Errors a user can fix end in one `error: ...` line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from nclab import __version__
from nclab.errors import ConfigError, NclabError
from nclab.plugins import ENV


def _resources(text: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(",") if item)}
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
    from nclab import cli_info, cli_report

    parser = _Parser(prog="nclab", description="Neural collapse lab")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--plugin", action="append", metavar="MODULE", help="import a module (or .py file) that registers "
        f"components, before any command; anywhere on the line, repeatable; also ${ENV}",
    )  # fmt: skip
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
    tr.set_defaults(handler=cmd_train)
    cli_report.add_parsers(sub)
    sw = sub.add_parser("sweep", help="a grid of runs on Ray Tune: nclab sweep FILE.yaml (see README)")
    sw.add_argument("file", type=Path, help="sweep file: base, grid, zip, random, out, resources, retries")
    sw.add_argument("--address", help="an existing Ray cluster (ray://host:10001); default: a local Ray")
    sw.add_argument(
        "--resources", type=_resources, help="per trial, e.g. cpu=1,gpu=0.25 (overrides the file)"
    )
    sw.add_argument("--retries", type=int, help="attempts after a trial's first failure (overrides the file)")
    sw.add_argument("--out", type=Path, help="sweep directory (overrides the file's out)")
    sw.add_argument("--report", action="store_true", help="only the table and figures of the runs so far")
    sw.add_argument("--yes", action="store_true", help="run a sweep of more than sweep.MAX_TRIALS trials")
    sw.add_argument(
        "--verbose", "-v", action="count", default=0, help="Ray Tune's tables instead of one line per trial "
        "event; twice (-vv): also the trials' own output",
    )  # fmt: skip
    sw.set_defaults(handler=cmd_sweep)
    uf = sub.add_parser(
        "ufm",
        help="unconstrained features model: nclab ufm K=10 d=64 n=50 loss=ce lambda_W=5e-4 lambda_H=5e-4",
    )
    uf.add_argument("items", nargs="*", help="an optional YAML config file, then key=value settings")
    uf.add_argument("--quiet", action="store_true", help="no progress lines")
    uf.set_defaults(handler=cmd_ufm)
    cli_info.add_parsers(sub)
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
    out.print(
        f"figure: {figure}" if figure.is_file() else f"figures: off; `nclab plot {run.path}` draws them"
    )


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
    from nclab.config import resolve

    file, overrides = _file_and_overrides(args.items)
    if args.resume:
        epochs = _resume_epochs([file] if file else [], overrides, args.preset)
    else:
        cfg = resolve(file, overrides, preset=args.preset)  # a typo is one line before torch is imported
    from nclab import distributed
    from nclab.train import resume, train

    progress = not args.quiet
    try:
        run = resume(args.resume, epochs, progress=progress) if args.resume else train(cfg, progress=progress)
    finally:
        distributed.finish()
    if distributed.is_main() and not args.quiet:
        _summary(run, run.path / "figures" / "nc.png")  # written by the run's end-of-run work


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


def cmd_sweep(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from nclab.config import describe
    from nclab.sweep import Resources, SweepResult, load_sweep, report
    from nclab.sweep_tune import TUNE_DIR, run_sweep

    sweep, trials, sweep_dir = load_sweep(args.file, args.out, yes=args.yes or args.report)
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


def _plugins(argv: list[str]) -> list[str]:
    """`--plugin NAME` / `--plugin=NAME` anywhere on the line: imported now (plugins.load), dropped from
    argv."""
    from nclab import plugins

    rest, names = [], []
    it = iter(argv)
    for arg in it:
        if arg == "--plugin":
            names.append(next(it, ""))
        elif arg.startswith("--plugin="):
            names.append(arg.removeprefix("--plugin="))
        else:
            rest.append(arg)
    if any(not name for name in names):
        raise ConfigError("--plugin takes a module name or a .py file")
    plugins.load(names)
    return rest


def main(argv: list[str] | None = None) -> int:
    from nclab.files import GuardedStdout, StdoutClosed, quiet_writer_threads

    quiet_writer_threads()
    stdout, sys.stdout = sys.stdout, GuardedStdout(sys.stdout)
    try:
        parser = _parser()
        args, extra = parser.parse_known_args(_plugins(sys.argv[1:] if argv is None else argv))
        if extra:  # key=value after a flag: `--quiet seed=0`
            if not hasattr(args, "items") or any(e.startswith("-") for e in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.items += extra
        args.handler(args)
        sys.stdout.flush()
    except NclabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except StdoutClosed as exc:  # `| head`, `> /dev/full`: nobody reads the rest
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "error: interrupted; finished epochs and checkpoints are kept in the run directory",
            file=sys.stderr,
        )
        return 130
    except (MemoryError, RuntimeError, OverflowError, TypeError, OSError) as exc:
        code = _machine_limit(exc)
        if code is None:  # a bug: its traceback
            raise
        return code
    finally:
        sys.stdout = stdout
    return 0


def _machine_limit(exc: BaseException) -> int | None:
    """The exit code of a limit of the machine, after its one line: an allocation it cannot give (1), a
    value it cannot hold (2); None otherwise."""
    text = str(exc).strip()
    first = text.splitlines()[0][:200] if text else type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in text or "allocate memory" in text:
        hint = "lower model.width, train.batch_size or the data size"
        print(f"error: out of memory ({first}); {hint}", file=sys.stderr)
        return 1
    if isinstance(exc, OverflowError) or "Overflow when unpacking" in text or "without overflow" in text:
        print(f"error: a value is too large for this machine ({first}); lower it", file=sys.stderr)
        return 2
    return None


if __name__ == "__main__":
    sys.exit(main())
