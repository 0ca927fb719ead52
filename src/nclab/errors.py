"""Errors a user can fix: the CLI prints their message as one `error: ...` line and exits with `exit_code`.
Warnings (the run goes on) are one `warning: ...` line on stderr."""

import sys


def warn(message: str) -> None:
    """One `warning: ...` line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class NclabError(Exception):
    exit_code = 1


class ConfigError(NclabError):
    """Unknown key, wrong type or unknown choice; nothing was written."""

    exit_code = 2


class DataError(NclabError):
    """A dataset that cannot be found or read."""

    exit_code = 2


class TrainingDiverged(NclabError):
    """A non-finite loss: the run stopped, finished epochs and the last good checkpoint are kept."""

    exit_code = 3
