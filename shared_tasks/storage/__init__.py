"""Where a dataset's bytes live: the single-file and partitioned layouts and the DVC pointer."""
