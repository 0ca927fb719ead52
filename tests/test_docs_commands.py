"""Every `nclab` command of README.md and docs/reproductions.md works as written: code-block lines
(continuations joined, comments dropped, `{a,b}` expanded) and the commands quoted in the reproduction
tables. Training and UFM commands are resolved (their config, as `nclab train` would start them); listing
commands run; commands on run directories or a timm model parse (their arguments are what the parser takes).
Lines that show a usage pattern (`[--kind nc|curves|...]`) are not commands."""

import itertools
import re
import shlex
from pathlib import Path

import pytest

from nclab.cli import _file_and_overrides, _parser, main
from nclab.config import resolve

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "reproductions.md"]
RUN_DIRS = ("runs", "plot", "measure", "visualize", "compare")
LISTINGS = ("presets", "options", "data", "models")


def _expand(command: str) -> list[str]:
    """`x-{a,b}-{c,d}` -> the four commands, as a shell would."""
    parts = re.split(r"\{([^{}]*,[^{}]*)\}", command)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def commands(path: Path) -> list[str]:
    text = path.read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S) + re.findall(r"\n\n((?:    .*\n)+)", text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())
            if line.startswith("nclab "):
                found.append(line)
    spans = [m.replace("\n", " ") for m in re.findall(r"`(nclab [^`]+)`", text)]
    found += [span for span in spans if "=" in span or span.endswith("--help")]  # commands, not names
    usage = re.compile(r"\[--|\[[a-z]+\]|\w\|\w|NAME|RUN\b|SECTION|\.\.\.|<")
    return sorted({c for cmd in found if not usage.search(cmd) for c in _expand(cmd)})


CASES = [(p.name, c) for p in DOCS for c in commands(p)]


def test_the_docs_hold_the_commands():
    names = [c for _, c in CASES]
    assert any("--preset zhu2021-mnist-adam data=digits model=mlp" in c for c in names)
    assert any(c.startswith("nclab ufm ") for c in names) and any(c.startswith("nclab sweep ") for c in names)
    assert len(CASES) > 30


@pytest.mark.parametrize(("doc", "command"), CASES)
def test_documented_command_works_as_written(doc, command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("{}\n")  # README's `nclab train config.yaml ...`
    argv = shlex.split(command)[1:]
    if "--help" in argv:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        return
    args, extra = _parser().parse_known_args(argv)
    assert not [e for e in extra if e.startswith("-")], extra
    items = [*getattr(args, "items", []), *extra]
    if args.command == "train" and args.resume is None:
        file, overrides = _file_and_overrides(items)
        resolve(file, overrides, preset=args.preset)
    elif args.command == "ufm":
        from nclab.ufm import resolve_ufm

        resolve_ufm(*_file_and_overrides(items))
    elif args.command == "sweep":
        from nclab.sweep import load_sweep

        load_sweep(ROOT / args.file)
    elif args.command in LISTINGS:
        assert main(argv) == 0, capsys.readouterr().err
    else:
        assert args.command in (*RUN_DIRS, "train")  # needs run directories or a model's weights
