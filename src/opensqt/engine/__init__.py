"""Engines that drive the agents, and the strategy service around them."""
