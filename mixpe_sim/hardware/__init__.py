"""Hardware model: PE kinds and closed-form tile costs, memory timing, and the SimPy components."""
