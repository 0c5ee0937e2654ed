"""Editing configuration files and `[_STORAGE]`, keeping comments (SCHEMA.md §14, MAN-004).

Scopes: ``local`` (this clone, ``.datamanifest/config.toml``), ``global`` (the user file),
``project`` (the manifest's ``[_STORAGE]``). ``host`` edits the ``_HOST."<glob>"`` section.
Every edit is validated against the storage model before it is written, atomically.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from .spec.tomlparse import parse_for_edit
from .errors import DataManifestError
from .spec.manifest import StorageTable
from .spec.resolution import FIELDS
from .store.atomic import write_text


def parse_values(field: str, values: list[str]) -> Any:
    """Command-line words -> a TOML value for ``field`` (arrays for the pool fields)."""
    def one(text: str) -> Any:
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return text

    if FIELDS.get(field) == "paths":
        if len(values) == 1 and values[0].startswith("["):
            return one(values[0])
        return [v for v in values if v]
    if len(values) != 1:
        raise DataManifestError(f"{field} takes one value", code="DM061")
    value = one(values[0])
    if FIELDS.get(field) in ("path", "string") or field not in FIELDS:
        return values[0] if not isinstance(value, str) else value
    return value


_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_setting(field: str, value: Any, scope: str) -> None:
    """Refuse, before anything is written, a value that the resolution would refuse or
    silently replace by the default (RES-002), and a user symbol that no path expression
    could name (STO-003: ``[A-Za-z_][A-Za-z0-9_]*``). Raises DataManifestError DM061."""
    import os

    from .spec.resolution import ResolutionError, _coerce

    if field not in FIELDS:
        if not _SYMBOL.match(field):
            raise DataManifestError(f"{field!r} is neither a storage field nor a symbol name",
                                    code="DM061", hint="storage fields: " + ", ".join(
                                        sorted(FIELDS)) + "; a symbol name is letters, "
                                    "digits and _, not starting with a digit")
        if not isinstance(value, str):
            raise DataManifestError(f"symbol {field} must be a string", code="DM061")
        return
    try:
        coerced = _coerce(field, value, scope, os.pathsep)
    except ResolutionError as e:
        raise DataManifestError(str(e), code="DM061",
                                hint="see SCHEMA.md RES-002 for the fields and their types"
                                ) from e
    if FIELDS[field] == "seconds" and coerced is None:
        raise DataManifestError(f"{field} must be a number of seconds > 0, not {value!r}",
                                code="DM061", hint="e.g. 30")


def _table(doc, scope: str, host: str | None, create: bool):
    root = doc
    if scope == "project":
        if "_STORAGE" not in doc:
            if not create:
                return None
            doc["_STORAGE"] = tomlkit.table()
        root = doc["_STORAGE"]
    if host is None:
        return root
    if "_HOST" not in root:
        if not create:
            return None
        root["_HOST"] = tomlkit.table(is_super_table=True)
    hosts = root["_HOST"]
    if host not in hosts:
        if not create:
            return None
        hosts[host] = tomlkit.table()
    return hosts[host]


def edit(path: Path, scope: str, field: str, value: Any = None, *, host: str | None = None,
         unset: bool = False) -> bool:
    """Set (or unset) ``field`` in the file at ``path``; returns whether the file changed.

    Raises DataManifestError DM061 when the result would not be a valid storage table.
    """
    if not unset:
        _check_setting(field, value, scope)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    doc = parse_for_edit(text)
    table = _table(doc, scope, host, create=not unset)
    if unset:
        if table is None or field not in table:
            return False
        del table[field]
    else:
        table[field] = value
    new = tomlkit.dumps(doc)
    data = tomllib.loads(new)
    storage = data.get("_STORAGE", {}) if scope == "project" else data
    try:
        StorageTable.model_validate(storage)
    except ValueError as e:
        raise DataManifestError(f"{field}: {str(e).splitlines()[-1].strip()}", code="DM061",
                                hint="see SCHEMA.md RES-002 for the fields and their types") \
            from e
    if new == text:
        return False
    write_text(path, new)
    return True
