# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A sweep into a DataFrame
#
# A design-space sweep is a grid of key paths (docs/sweeps.md); `ms.sweep` runs it (resumable: run it
# again and finished points are skipped) and returns one row per point with its full result.

# %%
import os
import tempfile

import mixpe_sim as ms

QUICK = bool(os.environ.get("MIXPE_TUTORIAL_QUICK"))
MODEL = os.environ.get("MIXPE_TUTORIAL_MODEL", "llama-2-7b")
spec = {
    "command": "step",
    "base": {"hw": "dc-mixpe-w4a16", "model": MODEL, "phase": "decode", "context": 256 if QUICK else 2048},
    "grid": {"memory": ["lpddr5-6400", "hbm3"], "array.cols": [64, 128] if QUICK else [32, 64, 128, 256]},
}
out_dir = tempfile.mkdtemp(prefix="mixpe-sweep-")

# %%
frame = ms.sweep(spec, out_dir=out_dir, workers=1, progress=True)
frame[["point", "memory", "array.cols", "status", "latency_s", "energy_j"]]

# %% [markdown]
# The full result of every point is kept: area and what binds, for instance.

# %%
frame["area_mm2"] = [r.area_mm2 for r in frame["result"]]
frame["bound"] = [r.bottleneck["decode"]["resource"] for r in frame["result"]]
frame.pivot_table(index="array.cols", columns="memory", values="latency_s")

# %% [markdown]
# Reading it back later, from the directory alone:

# %%
again = ms.load_sweep(out_dir)
assert again[["point", "latency_s"]].equals(frame[["point", "latency_s"]])
again.sort_values("energy_j").head(3)[["memory", "array.cols", "latency_s", "energy_j"]]
