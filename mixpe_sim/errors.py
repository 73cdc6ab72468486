"""User-facing errors. Each renders as one line naming the file, the key path and what is allowed."""

from __future__ import annotations


class MixpeError(Exception):
    """Base class for errors caused by user input; the CLI prints them and exits with status 2."""


class ConfigError(MixpeError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, source: str, key_path: str, message: str) -> None:
        self.source = source
        self.key_path = key_path
        self.message = message
        where = f"{source}: {key_path}" if key_path else source
        super().__init__(f"{where}: {message}")


class WorkloadError(MixpeError):
    """A workload (model shape, GEMM shape, tiling) cannot be simulated as asked."""
