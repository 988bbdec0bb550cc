"""OpenSQT: crypto trading agents as a constellation of gRPC microservices."""

__version__ = "0.1.0"
