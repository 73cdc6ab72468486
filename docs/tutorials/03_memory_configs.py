# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Plugging in a memory configuration
#
# Decode is memory-bound on a design sized for it, so the memory is the first thing to change. Swap a
# preset, change one key, or write your own YAML (docs/memory.md has the format; every timing is a
# JEDEC parameter with its unit in its name).

# %%
import os
import tempfile
from pathlib import Path

import pandas as pd

import mixpe_sim as ms

QUICK = bool(os.environ.get("MIXPE_TUTORIAL_QUICK"))
MODEL = os.environ.get("MIXPE_TUTORIAL_MODEL", "llama-2-7b")
CONTEXT = 256 if QUICK else 2048
MEMORIES = ["ddr4-3200", "lpddr5-6400", "hbm3"] if QUICK else ["ddr4-3200", "ddr5-4800", "lpddr5-6400", "gddr6",
                                                              "hbm2e", "hbm3"]

# %%
rows = []
for memory in MEMORIES:
    step = ms.simulate_step(ms.load_hardware("dc-mixpe-w4a16", memory=memory), MODEL, "decode", CONTEXT)
    rows.append({"memory": memory, "step_ms": step.step_s * 1e3, "dram_util": step.dram_bw_utilization,
                 "bound": step.bottleneck["decode"]["resource"],
                 "dram_mJ": 1e3 * sum(step.dram_energy_breakdown_j.values())})
pd.DataFrame(rows)

# %% [markdown]
# One key at a time, validated like `--set`: half the HBM3 channels.

# %%
half = ms.load_hardware("dc-mixpe-w4a16", memory="hbm3", overrides={"memory.channels": 16})
print(ms.simulate_step(half, MODEL, "decode", CONTEXT))

# %% [markdown]
# Your own memory: start from a preset's values (every result carries its full configuration) and
# change what you want, e.g. a faster LPDDR5X-8533-class speed bin with the same core timings.

# %%
import yaml

memory = ms.load_hardware(memory="lpddr5-6400").memory.model_dump(mode="json")
memory.update(name="lpddr5x-8533", data_rate_mtps=8533.0, source="lpddr5-6400 core timings at 8533 MT/s (assumed)")
memory["timing"]["tccd_s_ns"] = 16 / 8.533  # one BL16 burst at the faster rate
path = Path(tempfile.mkdtemp()) / "lpddr5x.yaml"
path.write_text(yaml.safe_dump(memory))
faster = ms.simulate_step(ms.load_hardware("dc-mixpe-w4a16", memory=str(path)), MODEL, "decode", CONTEXT)
print(faster, faster.memory["peak_bw_bytes_per_s"] / 1e9, "GB/s peak")

# %% [markdown]
# Where the DRAM energy goes, by command class:

# %%
pd.Series(faster.dram_energy_breakdown_j) * 1e3  # mJ
