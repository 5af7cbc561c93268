"""Generated protobuf code for the ``ehub.v1`` event contracts (source: ``proto/ehub/v1``).

Regenerate with ``uv run python scripts/gen_proto.py``; never edit ``ehub/`` by hand.
"""
