"""Wheel build hook: compile the simulator's hottest pure-Python modules with mypyc.

The modules stay plain Python (the source of truth, what an editable install and `python -m pytest`
from the checkout run); a wheel additionally carries their mypyc-compiled extensions, which Python
imports in preference to the `.py` next to them. Same integer arithmetic, same results bit for bit
(tests/test_compiled.py compares the installed build with the source). docs/performance.md.

No compiler, or MIXPE_SIM_PURE=1: the wheel is pure Python, with a warning; only slower.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# the code that runs per tile step, per DMA transfer and per trace record (docs/performance.md)
COMPILED_MODULES = [
    "mixpe_sim/hardware/dram/timing.py",  # DRAM channel timing: one call per transfer
    "mixpe_sim/hardware/dram/memory.py",  # the channels' striping (lockstep: one representative)
    "mixpe_sim/hardware/array.py",  # the PE array's and vector unit's tile loops
    "mixpe_sim/hardware/dma.py",
    "mixpe_sim/hardware/buffers.py",
    "mixpe_sim/hardware/primitives.py",
    "mixpe_sim/hardware/counters.py",
    "mixpe_sim/hardware/memory.py",  # flat memory, counters
    "mixpe_sim/trace/chrome.py",  # the trace writer and the timeline: one call per slice
    "mixpe_sim/trace/timeline.py",
    "mixpe_sim/trace/recording.py",
    "mixpe_sim/trace/records.py",  # the recording's packed words and the text made from them
    "mixpe_sim/trace/sink.py",  # compiled classes can't be subclassed by interpreted ones: with its users
    "mixpe_sim/trace/memory.py",
]
# Never compiled: a subclass of a SimPy class (hardware/clock.py): SimPy is not in the build
# environment, so mypyc would compile it against a base it cannot see (such a build crashed).

# the modules they import are type-checked for their interfaces (reported silently) but not compiled
MYPY_ARGS = ["--follow-imports=silent", "--ignore-missing-imports", "--python-version",
             f"{sys.version_info.major}.{sys.version_info.minor}"]


class CompiledCoreHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":  # an editable checkout runs its source
            return
        if os.environ.get("MIXPE_SIM_PURE") == "1":
            self.app.display_warning("MIXPE_SIM_PURE=1: building a pure-Python wheel (same results, slower)")
            return
        try:
            extensions = self._compile()
        except Exception as error:  # no compiler, no headers: still a working, slower wheel
            self.app.display_warning(f"mypyc compilation failed, building a pure-Python wheel: {error}")
            return
        build_data["pure_python"] = False  # a platform wheel (cp311-cp311-linux_x86_64, ...)
        build_data["infer_tag"] = True
        for built, relative in extensions:
            build_data["force_include"][built] = relative

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """The wheel holds the extensions now: remove the build directory."""
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    def _compile(self) -> list[tuple[str, str]]:
        """Compile COMPILED_MODULES; return (built file, path inside the wheel) per extension."""
        from mypyc.build import mypycify
        from setuptools import Distribution

        work = self._work = Path(tempfile.mkdtemp(prefix="mixpe-sim-mypyc-"))
        cwd = os.getcwd()
        os.chdir(self.root)  # mypyc names modules by their paths relative to the working directory
        try:
            # a fresh mypy cache: the build must not depend on a developer's .mypy_cache
            extensions = mypycify([*MYPY_ARGS, "--cache-dir", str(work / "mypy-cache"), *COMPILED_MODULES],
                                  target_dir=str(work / "c"), opt_level="3")
            command = Distribution({"ext_modules": extensions}).get_command_obj("build_ext")
            command.build_lib, command.build_temp = str(work / "lib"), str(work / "temp")
            command.ensure_finalized()
            command.run()
        finally:
            os.chdir(cwd)
        lib = work / "lib"
        return [(str(path), path.relative_to(lib).as_posix()) for path in lib.rglob("*") if path.is_file()]
