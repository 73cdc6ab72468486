"""The pure cost model of the architecture: PE kinds, closed-form tile costs, area (no SimPy)."""
