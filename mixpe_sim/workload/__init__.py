"""Workload compiler: pure functions from model/GEMM shapes to tiled programs. Never touches SimPy."""
