"""Runs: the jobs users ask for (one GEMM, an LLM request, a comparison), end to end."""
