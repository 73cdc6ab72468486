"""mixpe-sim: discrete-event simulation of mixed-precision LLM inference accelerators."""

from mixpe_sim._version import __version__

__all__ = ["__version__"]
