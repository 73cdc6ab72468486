"""DRAM: JEDEC channel timing (timing.py) and channels striped over the address space (memory.py)."""
