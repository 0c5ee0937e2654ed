"""Documents -> diagnostics (SCHEMA.md §9; every rule cited by ID below).

:func:`check_text` validates a manifest in three layers and returns every
problem as a :class:`~datamanifest.errors.Diagnostic` located at the line and
column of the offending key or value:

1. TOML syntax (DM001, DIAG-002);
2. structure and types per the JSON Schema ``schemas/manifest.v1.json``: the
   pydantic models, which agree with the schema on every fixture and property
   test (VAL-002), accept most documents quickly; when they reject one, the
   JSON Schema itself is run and each of its errors is mapped to a stable code;
3. the semantic rules the schema cannot express (requirements, cycles,
   identifiers, keys, symbols, legacy fields).

It never raises for bad input: every fault is a diagnostic.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import Diagnostic
from ..spec import tomlparse
from ..spec._locate import decode_error_position
from ..spec.manifest import SUPPORTED_SCHEMAS, Manifest, validate_structure
from .others import check_other
from .result import CheckResult, Collector
from .semantics import (
    PREDEFINED_SYMBOLS,
    STORAGE_FIELDS,
    meta_typos,
    referenced_symbols,
    semantic_layer,
    storage_typos,
    structural_tables,
)
from .structure import lenient_datasets, schema_layer

__all__ = [
    "PREDEFINED_SYMBOLS", "STORAGE_FIELDS", "CheckResult", "check_chunk_manifest", "check_data",
    "check_path", "check_text", "meta_typos", "referenced_symbols", "storage_typos",
]


def _is_chunk_manifest(file: str | None, text: str) -> bool:
    """CHK-009: by the name suffix ``.chunks.json``, or a JSON object with
    ``chunk_manifest`` near its start."""
    from ..spec.virtual import SUFFIX

    if file and file.endswith(SUFFIX):
        return True
    head = text.lstrip()[:4096]
    return head.startswith("{") and '"chunk_manifest"' in head


def check_chunk_manifest(text: str, file: str | None = None) -> CheckResult:
    """Check a chunk manifest (CHK-009): JSON, then ``schemas/chunk-manifest.v1.json``
    (DM150), then the rules of §25 (DM151 references, DM155 checksum), each diagnostic at
    the line and column of the offending value."""
    import json

    from .. import schemas
    from ..spec import virtual
    from ..spec._jsonlocate import locate

    result = CheckResult(file, doc_type="chunk-manifest")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        result.diagnostics = [Diagnostic("DM150", f"not JSON: {e.msg}", file, e.lineno, e.colno,
                                         (), "a chunk manifest is a JSON document")]
        return result
    result.data = data

    def diag(code: str, path: tuple, message: str, hint: str | None = None) -> Diagnostic:
        line, column = locate(text, path)
        return Diagnostic(code, message, file, line, column, path, hint)

    errors = sorted(schemas.validator("chunk-manifest").iter_errors(data),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        seen = set()
        for err in errors:
            path = tuple(err.absolute_path)
            if path in seen:
                continue
            seen.add(path)
            result.diagnostics.append(diag("DM150", path, err.message,
                                           "see `datamanifest schema chunk-manifest`"))
        result.diagnostics.sort(key=lambda d: (d.line or 0, d.column or 0))
        return result
    try:
        virtual.parse(data)
    except virtual.ChunkManifestError as e:
        result.diagnostics = [diag(e.code, e.path, e.message,
                                   "rebuild it with `datamanifest virtualize`"
                                   if e.code == "DM155" else None)]
    return result


def check_path(path: str | Path, doc_type: str | None = None) -> CheckResult:
    """Check the document at ``path`` (DM002 when it cannot be read).

    ``doc_type`` is one of :data:`datamanifest.spec.documents.DOC_TYPES`; by
    default it is detected from the file name and ``_META`` (DOC-001).
    """
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        return CheckResult(str(p), diagnostics=[Diagnostic(
            "DM002", f"cannot read {p}: {reason}", str(p), hint="check the path and permissions",
        )])
    return check_text(text, str(p), doc_type)


def check_text(text: str, file: str | None = None, doc_type: str | None = None) -> CheckResult:
    """Check document source ``text`` (SCHEMA.md §9). Never raises for bad input.

    ``result.doc_type`` tells which document type it was checked as.
    """
    if doc_type == "chunk-manifest" or (doc_type is None and _is_chunk_manifest(file, text)):
        return check_chunk_manifest(text, file)
    result = CheckResult(file)
    col = Collector(file, text)
    try:
        data = tomlparse.loads(text)
    except tomllib.TOMLDecodeError as e:
        line, column, msg = decode_error_position(e, text)
        result.diagnostics = [Diagnostic(
            "DM001", f"TOML syntax error: {msg}", file, line, column, (),
            "see https://toml.io/en/v1.0.0 for the syntax",
        )]
        return result
    result.data = data
    from ..spec.documents import detect

    result.doc_type = doc_type or detect(data, file)
    if result.doc_type != "manifest":
        check_other(result.doc_type, data, col)
        result.diagnostics = col.sorted()
        return result
    manifest = check_data(data, col)
    result.diagnostics = col.sorted()
    if result.ok:
        result.manifest = manifest
    return result


def check_data(data: dict[str, Any], col: Collector) -> Manifest | None:
    """Run the structural and semantic layers on a parsed manifest, into ``col``.

    Returns the model when the document is structurally valid, else None.
    """
    meta = data.get("_META")
    if isinstance(meta, dict):
        schema = meta.get("schema", 0)
        if type(schema) is int and schema not in SUPPORTED_SCHEMAS:
            col.add("DM004", ("_META", "schema"),
                    f"manifest schema {schema} is not supported (this tool reads schemas "
                    f"{', '.join(map(str, SUPPORTED_SCHEMAS))})",
                    "upgrade datamanifest, or use a tool that reads this schema")
            return None  # a newer document is not judged by older rules (VER-003)
    if "_META" not in data and any(not k.startswith("_") for k in data):
        first = next(k for k in data if not k.startswith("_"))
        col.add("DM007", (first,), "no [_META] schema: the manifest reads as schema 0",
                "run `datamanifest migrate` to add [_META] schema = 1", at_key=True)
    structural_tables(data, col)
    try:
        manifest: Manifest | None = validate_structure(data)
    except ValueError:
        manifest = None
    if manifest is not None:
        semantic_layer(data, manifest.datasets, col)
        return manifest
    bad = schema_layer(data, col)
    semantic_layer(data, lenient_datasets(data, bad), col)
