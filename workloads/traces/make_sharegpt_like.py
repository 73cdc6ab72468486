"""Writes sharegpt-like.csv: 1000 request lengths shaped like vLLM's ShareGPT serving benchmark.

Source of the targets: vLLM pull request #18566 (github.com/vllm-project/vllm/pull/18566) reports
`vllm bench serve` on ShareGPT_Vicuna_unfiltered, 1000 requests: 229,711 input and 203,068 generated
tokens, i.e. means of 229.7 prompt and 203.1 output tokens per request. vLLM's ShareGPT sampler
keeps prompts and outputs of at least 4 tokens, prompts of at most 1024 and prompt + output of at
most 2048 tokens; we apply the same limits.
Assumed (not in the source): both lengths are lognormal with sigma = 1.0 and independent; mu is
solved so that the clipped means match the targets. Run `python make_sharegpt_like.py` to rebuild.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

TARGET_MEAN_PROMPT = 229.7
TARGET_MEAN_OUTPUT = 203.1
SIGMA = 1.0
ROWS = 1000
SEED = 2023
MIN_TOKENS, MAX_PROMPT, MAX_TOTAL = 4, 1024, 2048


def _draw(rng: random.Random, mu_prompt: float, mu_output: float) -> tuple[int, int]:
    while True:
        prompt = round(rng.lognormvariate(mu_prompt, SIGMA))
        output = round(rng.lognormvariate(mu_output, SIGMA))
        if MIN_TOKENS <= prompt <= MAX_PROMPT and output >= MIN_TOKENS and prompt + output <= MAX_TOTAL:
            return prompt, output


def _rows(mu_prompt: float, mu_output: float) -> list[tuple[int, int]]:
    rng = random.Random(SEED)
    return [_draw(rng, mu_prompt, mu_output) for _ in range(ROWS)]


def main() -> None:
    mu_prompt, mu_output = math.log(TARGET_MEAN_PROMPT) - SIGMA**2 / 2, math.log(TARGET_MEAN_OUTPUT) - SIGMA**2 / 2
    for _ in range(50):  # fixed point: shift mu until the clipped sample means hit the targets
        rows = _rows(mu_prompt, mu_output)
        mu_prompt += math.log(TARGET_MEAN_PROMPT / (sum(p for p, _ in rows) / ROWS))
        mu_output += math.log(TARGET_MEAN_OUTPUT / (sum(o for _, o in rows) / ROWS))
    rows = _rows(mu_prompt, mu_output)
    path = Path(__file__).with_name("sharegpt-like.csv")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["prompt_tokens", "output_tokens"])
        writer.writerows(rows)
    print(f"{path}: {ROWS} rows, mean prompt {sum(p for p, _ in rows) / ROWS:.1f}, "
          f"mean output {sum(o for _, o in rows) / ROWS:.1f}")


if __name__ == "__main__":
    main()
