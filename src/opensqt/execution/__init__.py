"""Order execution: the trading-state gate, the executor service, (later) DBOS workflows."""
