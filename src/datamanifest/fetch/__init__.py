"""Fetching: one module per source scheme, archives, and the engine (SCHEMA.md §11)."""
