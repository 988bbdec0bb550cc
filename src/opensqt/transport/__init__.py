"""Edges: protobuf codec, NATS bus and subjects, Redis store and keys, gRPC server and client."""
