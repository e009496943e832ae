"""Report stores: where reports come from and where terminal failures are written."""
