"""Errors a user can fix: the CLI prints their message as one `error: ...` line and exits with `exit_code`.
Warnings (the run goes on) are one `warning: ...` line on stderr.

Exit codes: 2 = the input is wrong (arguments, config, a run directory or file given), 1 = the environment
(disk full, permission denied, a run directory locked by another process, no CUDA device), 3 = the training
diverged, 128 + signal number = interrupted (130 for SIGINT/Ctrl-C, 143 for SIGTERM)."""

import signal
import sys


def warn(message: str) -> None:
    """One `warning: ...` line on stderr (a skipped file, an ignored torn line); the command goes on."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class NclabError(Exception):
    exit_code = 1


class ConfigError(NclabError):
    """Unknown key, wrong type or unknown choice; nothing was written."""

    exit_code = 2


class DataError(NclabError):
    """A dataset that cannot be found or read."""

    exit_code = 2


class RunError(NclabError):
    """A run directory or one of its files that cannot be used as given (missing, corrupt, mismatched)."""

    exit_code = 2


class CorruptFile(RunError):
    """A run file that fails its check (truncated, checksum mismatch): readers that can go on skip it."""


class WriteError(NclabError):
    """Disk full, permission denied, ...: the write was abandoned and the previous complete file kept."""

    exit_code = 1


class RunLocked(NclabError):
    """Another live process holds the run directory's lock."""

    exit_code = 1


class TrainingDiverged(NclabError):
    """A non-finite loss: the run stopped; the finished epochs' files are kept."""

    exit_code = 3


class Interrupted(NclabError):
    """SIGINT or SIGTERM: the run stopped between writes; exit code 128 + the signal number."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")


class ReadError(NclabError):
    """A file that cannot be read as given: missing, a directory, not permitted, not UTF-8, bad YAML."""

    exit_code = 2
