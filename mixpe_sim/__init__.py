"""mixpe-sim: discrete-event simulation of mixed-precision LLM inference accelerators.

The Python API (docs/api.md; every function's docstring has a runnable example)::

    import mixpe_sim as ms
    hw = ms.load_hardware("dc-mixpe-w4a16", memory="hbm3")
    step = ms.simulate_step(hw, "llama-2-7b", "decode", context=2048, trace=True)
    step.step_s, step.bound(), step.to_frame(), step.timeline
"""

from mixpe_sim._version import __version__
from mixpe_sim.api import (
    load_hardware,
    load_model,
    load_sweep,
    simulate_gemm,
    simulate_request,
    simulate_serving,
    simulate_serving_load,
    simulate_step,
    sweep,
)
from mixpe_sim.errors import ConfigError, MixpeError, WorkloadError
from mixpe_sim.report.plots import plot_roofline, plot_time_breakdown, plot_timeline
from mixpe_sim.report.serving import plot_latency_vs_load, plot_serving_timeline
from mixpe_sim.results import (
    GemmResult,
    RequestResult,
    Result,
    ServingLoadResult,
    ServingResult,
    StepResult,
    result_from_dict,
)

__all__ = [
    "ConfigError",
    "GemmResult",
    "MixpeError",
    "RequestResult",
    "Result",
    "ServingLoadResult",
    "ServingResult",
    "StepResult",
    "WorkloadError",
    "__version__",
    "load_hardware",
    "load_model",
    "load_sweep",
    "plot_latency_vs_load",
    "plot_roofline",
    "plot_serving_timeline",
    "plot_time_breakdown",
    "plot_timeline",
    "result_from_dict",
    "simulate_gemm",
    "simulate_request",
    "simulate_serving",
    "simulate_serving_load",
    "simulate_step",
    "sweep",
]
