"""Which of the package's modules run compiled (mypyc, hatch_build.py) rather than as Python source."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def compiled_modules() -> list[str]:
    """Dotted names of the modules a wheel carries compiled; empty for a source checkout or pure build.
    Python imports an extension in preference to the `.py` beside it, so these are the ones that run."""
    suffixes = sorted(EXTENSION_SUFFIXES, key=len, reverse=True)  # ".cpython-311-...so" before ".so"
    names = []
    for path in PACKAGE_DIR.rglob("*.*"):
        suffix = next((s for s in suffixes if path.name.endswith(s)), None)
        if suffix is None:
            continue
        stem = path.name[: -len(suffix)]
        if not stem.endswith("__mypyc"):  # mypyc's shared runtime, not a module of ours
            names.append(".".join(["mixpe_sim", *path.relative_to(PACKAGE_DIR).parent.parts, stem]))
    return sorted(set(names))


def describe_build() -> str:
    """One line for `--version`."""
    compiled = compiled_modules()
    return f"compiled: {', '.join(compiled)}" if compiled else "pure Python"
