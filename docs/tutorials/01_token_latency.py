# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # End-to-end token latency
#
# How long does LLaMA-2-7B take per token on a MixPE accelerator, how much energy, and what binds it?
# Open this file as a notebook (`jupytext --to notebook 01_token_latency.py`, or Jupyter with the
# jupytext extension) or run it as a script. `pip install 'mixpe-sim[notebook]'` brings pandas,
# matplotlib, tqdm and jupytext.

# %%
import os

import mixpe_sim as ms

QUICK = bool(os.environ.get("MIXPE_TUTORIAL_QUICK"))  # the test suite runs the tutorials small
MODEL = os.environ.get("MIXPE_TUTORIAL_MODEL", "llama-2-7b")
PROMPT, GEN = (64, 4) if QUICK else (512, 32)

# %% [markdown]
# A design is a preset (`mixpe-sim list`) or a YAML file; any key can be overridden, and is validated
# like `--set` on the command line.

# %%
hw = ms.load_hardware("dc-mixpe-w4a16")           # datacenter MixPE W4A16 with one HBM3 stack
model = ms.load_model(MODEL)
request = ms.simulate_request(hw, model, prompt=PROMPT, gen=GEN)
request                                           # TTFT, TPOT, energy, what binds each phase

# %%
print(f"time to first token  {request.ttft_s * 1e3:8.2f} ms")
print(f"time per output token {request.tpot_s * 1e3:8.2f} ms")
print(f"tokens/s             {request.tokens_per_s:8.1f}")
print(f"energy               {request.energy_j:8.3f} J  {request.energy_breakdown_j}")
print(request.bound())

# %% [markdown]
# Where the time went, per op and phase, as a DataFrame; the columns keep the CLI's key names.

# %%
ops = request.to_frame()
ops.sort_values("busy_s", ascending=False).head(8)[["phase", "op", "calls", "busy_s", "stall_s", "dram_bytes"]]

# %% [markdown]
# The same breakdown as a figure: compute and each stall cause, stacked to each op's time.

# %%
figure = ms.plot_time_breakdown(request)
figure  # a matplotlib Figure: shown inline in Jupyter; figure.savefig("breakdown.png") elsewhere

# %% [markdown]
# Against the FP16 design of the same area (`dc-fp16`, sized by `mixpe-sim compare --iso-area`):

# %%
fp16 = ms.simulate_request("dc-fp16", model, prompt=PROMPT, gen=GEN)
print(f"MixPE vs FP16 at equal area: TTFT {fp16.ttft_s / request.ttft_s:.2f}x, "
      f"TPOT {fp16.tpot_s / request.tpot_s:.2f}x, energy {fp16.energy_j / request.energy_j:.2f}x")
