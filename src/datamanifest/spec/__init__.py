"""Pure document models and the spec's algorithms, one module per concept (no I/O)."""
