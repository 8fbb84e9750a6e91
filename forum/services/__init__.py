"""Features beside the paid-message pipeline (`forum.ingest`): moderation, rooms, tips and their
forwards, quotes, rebuilds, the demo, page versions and the node's identity. They may call the
pipeline (a rebuild rides its batches); the pipeline imports none of them (import contracts in
pyproject.toml)."""
