"""`nclab presets|data|options|models`: what there is to choose from (cli.py builds the parser and reports
errors)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nclab.errors import ConfigError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`presets`, `data`, `options`, `models`: what there is to choose from."""
    pr = sub.add_parser("presets", help="the named presets by study, or one preset's source and config")
    pr.add_argument("name", nargs="?", help="a preset: print what it reproduces and its resolved config")
    pr.set_defaults(handler=cmd_presets)
    da = sub.add_parser("data", help="datasets: nclab data list | nclab data info NAME [key=value ...]")
    da.add_argument("action", choices=["list", "info"])
    da.add_argument(
        "items", nargs="*", help="info: the dataset name, then data.* overrides (e.g. data.root=...)"
    )
    da.set_defaults(handler=cmd_data)
    op = sub.add_parser(
        "options", help="components and their options: nclab options [data|model|loss|optim [NAME]]"
    )
    op.add_argument("section", nargs="?", help="data, model, loss or optim")
    op.add_argument("name", nargs="?", help="a component of the section, e.g. focal")
    op.set_defaults(handler=cmd_options)
    mo = sub.add_parser("models", help="models with feature dim and parameter count for a dataset's inputs")
    mo.add_argument(
        "items", nargs="*", help="key=value settings, e.g. data=digits head.fixdim=true model=vit"
    )
    mo.add_argument("--input-shape", help="C,H,W (or D) instead of a dataset's shape, e.g. 3,32,32")
    mo.add_argument("--classes", type=int, default=10, help="K with --input-shape (default 10)")
    mo.set_defaults(handler=cmd_models)


def cmd_presets(args: argparse.Namespace) -> None:
    from nclab.presets import STUDIES, preset_about, preset_names, study_of

    if args.name:
        from nclab.config import resolve

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
    train, test, shape, classes = info.train, info.test, info.shape, info.classes
    if info.built_by_info:  # sizes under these options (a text corpus: tokenised once, then cached)
        from nclab.data import load_dataset

        splits = load_dataset(cfg, seed=0)
        train, test, shape, classes = (
            len(splits.train_y),
            len(splits.test_y),
            splits.input_shape,
            splits.num_classes,
        )
    print(f"train {count(train)}, test {count(test)}, shape {shape}, {classes} classes")
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
