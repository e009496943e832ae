"""The run lifecycle, independent of where it is called from (flows, serve loops, the CLI)."""
