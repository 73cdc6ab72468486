"""Results: summaries of raw runs, JSON/CSV output written atomically, human-readable tables."""
