"""Generated from api/proto/v1 by scripts/gen_proto.py. Do not edit."""
