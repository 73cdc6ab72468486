"""Design-space sweeps: sweep file -> points -> executor (local or Dask) -> append-only result store."""
