# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Bandwidth and stall timelines
#
# Why is a decode step as fast as it is? `trace=True` keeps what every component did, as data: a
# windowed timeline (bandwidth per component, buffer occupancy, PE utilisation, stall time per cause)
# and every traced span (ops, tiles, DMA transfers). The CLI writes the same to files
# (`mixpe-sim step --trace --out DIR`, docs/traces.md).

# %%
import os

import mixpe_sim as ms

QUICK = bool(os.environ.get("MIXPE_TUTORIAL_QUICK"))
MODEL = os.environ.get("MIXPE_TUTORIAL_MODEL", "llama-2-7b")
CONTEXT = 256 if QUICK else 2048

# %%
hw = ms.load_hardware("dc-mixpe-w4a16", memory="lpddr5-6400")
step = ms.simulate_step(hw, MODEL, "decode", context=CONTEXT, exact=True, trace=True)
step

# %% [markdown]
# One row per time window; integrating the DRAM bandwidth gives back the bytes the step moved.

# %%
timeline = step.timeline
moved = (timeline["dram_bw_bytes_per_s"] * (timeline["end_s"] - timeline["start_s"])).sum()
print(f"{moved / 1e6:.1f} MB moved in the timeline, {(step.dram_bytes_read + step.dram_bytes_written) / 1e6:.1f} "
      "MB in the result")
timeline.head()

# %% [markdown]
# Every op's span on the controller lane: which ops take longest, and when.

# %%
spans = step.spans
ops = spans[(spans.component == "controller") & (spans.lane == "ops")].copy()
ops["duration_us"] = (ops.end_s - ops.start_s) * 1e6
ops.sort_values("duration_us", ascending=False).head(6)[["name", "start_s", "duration_us"]]

# %% [markdown]
# Bandwidth against the memory's peak, buffer occupancy, and the PE array's time per window split
# into compute and each stall cause (the stack fills the window).

# %%
figure = ms.plot_timeline(step)
figure
