"""One reader and one writer for every file nclab touches (config files, sweep files, run directories,
checkpoints, figures, TensorBoard events), so a bad file or a failing disk is one `error:` line everywhere.

Reading (`read_bytes`, `read_text`, `read_yaml`): a missing file, a directory where a file belongs, a
permission error, bytes that are not UTF-8 text (binary, latin-1, UTF-16), YAML with unhashable or
non-string keys, nesting deeper than MAX_DEPTH, or an integer beyond 64 bits -> ReadError (exit 2) naming
the file. Writing (`replace`, `write_atomic`, `append_line`, `save_tensors`, and `writing` around writers
that own their file: TensorBoard's) turns ENOSPC, EDQUOT, EFBIG, EROFS, EACCES, ... into WriteError (exit 1)
naming the file; a whole-file write goes to a temp file beside it (fsync, rename, fsync of the directory),
removed on failure, so the previous complete file stays. Every safetensors file carries a CRC-32 of its
tensors; one whose header metadata is trusted (the resume state: epoch, progress, config) is written with
`format: 2` and its CRC-32 covers the metadata too (analysis arrays keep their format-1 headers).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nclab.errors import ConfigError, CorruptFile, ReadError, WriteError

if TYPE_CHECKING:
    import torch

__all__ = [
    "Guarded",
    "GuardedStdout",
    "StdoutClosed",
    "append_line",
    "check_name",
    "check_tree",
    "load_tensors",
    "parse_yaml",
    "quiet_writer_threads",
    "read_bytes",
    "read_text",
    "read_yaml",
    "replace",
    "save_tensors",
    "tree_problem",
    "write_atomic",
    "write_error",
    "writing",
]

MAX_DEPTH = 32  # nesting levels of a YAML tree (configs use 3)
INT64 = 2**63  # integers must lie in [-2^63, 2^63): what torch and NumPy hold
FORMAT = "2"  # a safetensors file whose CRC-32 covers the tensors and the metadata
NAME_MAX = 255  # bytes of one path component on the common file systems


# --- reading ----------------------------------------------------------------------------------------------
def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of `path`; ReadError naming `what` and the path when it cannot be read as a file."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReadError(f"{what} {path} not found") from None
    except IsADirectoryError:
        raise ReadError(f"{what} {path} is a directory, not a file") from None
    except PermissionError:
        raise ReadError(f"{what} {path} cannot be read (permission denied)") from None
    except OSError as exc:
        raise ReadError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """`path` decoded as UTF-8; ReadError saying what the bytes look like when they are not UTF-8 text."""
    data = read_bytes(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            kind = "UTF-16 text"
        elif b"\0" in data[:4096]:
            kind = "binary, not text"
        else:
            kind = f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}: latin-1?)"
        raise ReadError(f"{what} {path} is {kind}; save it as UTF-8 text") from None
    if "\0" in text:
        raise ReadError(f"{what} {path} is binary, not text; save it as UTF-8 text")
    return text.removeprefix("\ufeff")


class _Loader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last one silently) and
    keys that are not strings (a list or a number as a key)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {_short(key)} (line {line}) is not a name", None
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (line {line})"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def parse_yaml(text: str) -> Any:
    """The tree of YAML `text`; yaml.YAMLError for bad syntax, keys that are not strings, nesting deeper
    than Python's recursion and integers of thousands of digits (`tree_problem` checks the rest)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # int() of more than sys.get_int_max_str_digits() digits
        raise yaml.YAMLError("an integer beyond 64 bits") from None


def tree_problem(tree: Any) -> str | None:
    """Why a parsed tree cannot be held (nested deeper than MAX_DEPTH, an integer beyond 64 bits), or None."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(node, int) and not isinstance(node, bool) and not -INT64 <= node < INT64:
            return f"the integer {_short(node)} is beyond 64 bits"
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)
    return None


def check_tree(tree: Any, where: str) -> Any:
    """`tree` (an override's value) if nclab can hold it, else ConfigError naming `where`."""
    problem = tree_problem(tree)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return tree


def read_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping of a YAML file ({} when empty); ReadError naming the file for anything else."""
    try:
        data = parse_yaml(read_text(path, what))
    except yaml.YAMLError as exc:
        raise ReadError(f"{what} {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    problem = tree_problem(data)
    if problem:
        raise ReadError(f"{what} {path}: {problem}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ReadError(f"{what} {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def check_name(name: Any, what: str = "name") -> str:
    """A run (or trial) directory name: one path component, so the run stays inside `out`; ConfigError."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ConfigError(
            f"{what}={name!r}: a run name is one directory name: no '/', not empty, not starting with '.'"
        )
    if name.startswith("."):
        raise ConfigError(f"{what}={name!r}: a run name is one directory name, not starting with '.'")
    if len(name.encode()) > NAME_MAX:
        raise ConfigError(f"{what}: a run name has at most {NAME_MAX} bytes (a file system limit)")
    return name


# --- writing ----------------------------------------------------------------------------------------------
def write_error(path: Path, exc: Exception, kept: bool = True) -> WriteError:
    """One line naming the file, the reason and the remedy; safetensors reports `... (os error N)`."""
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and (found := re.search(r"os error (\d+)", str(exc))):
        code = int(found.group(1))
    hint = {
        errno.ENOSPC: "free disk space",
        errno.EDQUOT: "free disk space (quota)",
        errno.EFBIG: "the file size limit (ulimit -f) was reached",
        errno.EACCES: f"check the permissions of {path.parent}",
        errno.EPERM: f"check the permissions of {path.parent}",
        errno.EROFS: "the file system is read-only",
    }.get(code, "check the disk")
    reason = os.strerror(code) if code else str(exc).splitlines()[0][:120]
    tail = "; the previous complete file is kept" if kept else ""
    return WriteError(f"cannot write {path}: {reason}; {hint}{tail}")


@contextlib.contextmanager
def writing(path: Path, kept: bool = False) -> Iterator[None]:
    """Turn a failing write inside the block (a writer that owns its file) into WriteError naming `path`
    (safetensors' SafetensorError, `... (os error N)`, once safetensors is loaded: torch and safetensors load
    on first use, so config-only commands stay light)."""
    failures: tuple[type[Exception], ...] = (OSError,)
    if "safetensors" in sys.modules:
        failures += (sys.modules["safetensors"].SafetensorError,)
    try:
        yield
    except failures as exc:
        raise write_error(path, exc, kept) from None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(path: Path, fill: Callable[[Path], None]) -> None:
    """Replace `path` atomically: `fill` writes a temp file beside it, then fsync, rename, fsync of the
    directory. On failure the temp file is removed and WriteError raised; `path` is untouched. Under
    torchrun only rank 0 writes (as distributed.is_main, read from torch.distributed once it is loaded)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with writing(path, kept=True):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fill(tmp)
            _fsync(tmp)
            os.replace(tmp, path)
            _fsync(path.parent)
        finally:
            tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text or bytes) atomically."""
    replace(path, lambda tmp: tmp.write_bytes(data.encode() if isinstance(data, str) else data))


def append_line(path: Path, line: str) -> None:
    """Append one whole line with one write and fsync (a kill leaves at most a torn last line)."""
    data = line.encode()
    with writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)


class Guarded:
    """A writer object that owns its files (TensorBoard's SummaryWriter): every call's write failure,
    including one its writer thread met and re-raises on the next call, is WriteError naming `path`."""

    def __init__(self, make: Callable[[], Any], path: Path) -> None:
        self._path = path
        with writing(path):
            self._writer = make()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._writer, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with writing(self._path):
                return attr(*args, **kwargs)

        return call


def quiet_writer_threads() -> None:
    """A writer thread's OSError (TensorBoard's, raised again to its owner as WriteError) or StdoutClosed (a
    progress bar's refresh) prints no traceback."""
    default = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not issubclass(args.exc_type, OSError | StdoutClosed):
            default(args)

    threading.excepthook = hook


class StdoutClosed(Exception):
    """stdout went away (`| head` exited, `> /dev/full`): the command ends quietly (exit 0 for a pipe, 1)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exit_code = 0 if isinstance(exc, BrokenPipeError) else 1


class GuardedStdout:
    """sys.stdout whose write failures are StdoutClosed, told apart from every other OSError; after one,
    fd 1 points at /dev/null so the interpreter's last flush stays quiet."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guard(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except OSError as exc:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
            raise StdoutClosed(exc) from None

    def write(self, text: str) -> int:
        return self._guard("write", text)

    def flush(self) -> None:
        self._guard("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# --- checksummed tensors -----------------------------------------------------------------------------------
def _checksum(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None) -> str:
    """CRC-32 of the names and bytes of the tensors in name order, then (format 2) of the metadata's keys
    and values in key order: detects truncation, flipped bits and (format 2) an edited header."""
    import torch

    crc = 0
    for key in sorted(tensors):
        crc = zlib.crc32(key.encode(), crc)
        crc = zlib.crc32(tensors[key].reshape(-1).view(torch.uint8).numpy(), crc)
    for key in sorted(metadata or {}):
        if key != "crc32":
            crc = zlib.crc32(f"{key}\0{metadata[key]}\0".encode(), crc)
    return f"{crc:08x}"


def save_file(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """safetensors' writer (it writes the file itself: no copy of the whole file in Python)."""
    from safetensors.torch import save_file as write

    write(tensors, path, metadata=metadata)


def save_tensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str], cover_metadata: bool = False
) -> None:
    """A safetensors file with the CRC-32 of its tensors (and with `cover_metadata` of its metadata, format
    2) in the header, written atomically (safetensors writes the temp file itself: no copy in Python)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {**metadata, "format": FORMAT} if cover_metadata else dict(metadata)
    metadata["crc32"] = _checksum(tensors, metadata if cover_metadata else None)
    replace(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a file written by `save_tensors`; CorruptFile naming the file if it is
    truncated, corrupt (checksum mismatch) or carries no checksum; ReadError if it cannot be read."""
    from safetensors import safe_open

    path = Path(path)
    try:
        open(path, "rb").close()
    except OSError:
        read_bytes(path, "file")  # the line for a missing file, a directory, a permission error
    try:
        with safe_open(path, "pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    except Exception as exc:  # any parse failure of untrusted bytes means the same thing
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CorruptFile(f"{path} is corrupt or truncated ({reason}); delete it or restore it") from None
    if "crc32" not in metadata:
        raise CorruptFile(f"{path} has no checksum (not written by nclab); delete it or restore it")
    covered = metadata if "format" in metadata else None
    if _checksum(tensors, covered) != metadata["crc32"]:
        raise CorruptFile(f"{path} is corrupt or was edited (checksum mismatch); delete it or restore it")
    return tensors, metadata
