"""The canonical form of TOML documents (SCHEMA.md §18, rules FMT-001..FMT-004).

Key order is defined here exactly (FMT-001); the layout is that of the
reference serializer tomli-w 1.x (FMT-002), pinned by the ``roundtrip``
fixtures so any drift is caught. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

import tomli_w


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]  # arrays keep their order (FMT-001)
    return value


def sort_document(doc: dict[str, Any], doc_type: str = "manifest") -> dict[str, Any]:
    """``doc`` with every table's keys in canonical order (FMT-001).

    Code point order at every level; at the top level of a manifest, keys
    starting with ``_`` come first; in a config sidecar, ``_META`` comes last.
    """
    inner = _sorted(doc)
    keys = list(inner)
    if doc_type == "manifest":
        keys = [k for k in keys if k.startswith("_")] + [k for k in keys if not k.startswith("_")]
    elif doc_type == "config-sidecar" and "_META" in inner:
        keys = [k for k in keys if k != "_META"] + ["_META"]
    return {k: inner[k] for k in keys}


def dumps(doc: dict[str, Any], doc_type: str = "manifest") -> str:
    """The canonical text of a parsed document (FMT-001, FMT-002)."""
    return tomli_w.dumps(sort_document(doc, doc_type))


def key_orders(value: Any, path: tuple = ()) -> list[tuple[tuple, tuple]]:
    """Every table's key order, for semantic comparison including order (FMT-004)."""
    out: list[tuple[tuple, tuple]] = []
    if isinstance(value, dict):
        out.append((path, tuple(value)))
        for k, v in value.items():
            out.extend(key_orders(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(key_orders(v, (*path, i)))
    return out
