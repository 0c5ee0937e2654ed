"""Materialization on disk: layout, locks, atomic publish and the state file (SCHEMA.md §7–§8)."""
