"""Market and account monitors: what the monitor service knows and serves."""
