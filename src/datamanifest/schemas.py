"""The JSON Schemas of the spec, found inside the installed package (SCHEMA.md §10).

A wheel ships ``schemas/*.json`` as ``datamanifest/schemas/``; an editable
checkout reads the top-level ``schemas/`` folder. ``load("manifest")`` gives
the parsed schema, ``validator("manifest")`` a cached Draft 2020-12 validator.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

#: Document type -> schema file name of the current spec version.
SCHEMA_FILES = {
    "manifest": "manifest.v1.json",
    "state": "state.v1.json",
    "config": "config.v1.json",
    "config-sidecar": "config-sidecar.v1.json",
    "metadata-sidecar": "metadata-sidecar.v1.json",
    "tree-manifest": "tree-manifest.v1.json",
    "produced-marker": "produced-marker.v1.json",
    "trust-record": "trust-record.v1.json",
    "state-journal-line": "state-journal-line.v1.json",
    "chunk-manifest": "chunk-manifest.v1.json",
    "append-config": "append-config.v1.json",
    "append-journal": "append-journal.v1.json",
    "append-lock": "append-lock.v1.json",
}


def schema_dir() -> Path:
    """The folder holding the JSON Schemas (packaged copy first, then the source tree)."""
    packaged = resources.files("datamanifest") / "schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "schemas"
    if source.is_dir():
        return source
    raise FileNotFoundError("datamanifest's JSON Schemas are missing from this installation")


def names() -> list[str]:
    """The document types that have a schema."""
    return sorted(SCHEMA_FILES)


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The parsed JSON Schema of document type ``name`` (``KeyError`` if unknown)."""
    with open(schema_dir() / SCHEMA_FILES[name], encoding="utf-8") as f:
        return json.load(f)


@functools.cache
def validator(name: str):
    """A cached ``jsonschema.Draft202012Validator`` for document type ``name``."""
    import jsonschema

    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
