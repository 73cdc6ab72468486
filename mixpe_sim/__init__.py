"""mixpe-sim: discrete-event simulation of mixed-precision LLM inference accelerators."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mixpe-sim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
