"""``datamanifest migrate``: rewrite legacy manifest forms to current ones (SCHEMA.md §19).

Edits are made with tomlkit on the user's text, so comments, order and layout
are kept everywhere except the lines that change. Each change is reported;
forms with no safe automatic rewrite are reported as left alone.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

import tomlkit

from .spec.tomlparse import parse_for_edit
from .spec import checksum as _checksum


@dataclass(frozen=True)
class Change:
    """One rewrite (or a legacy form left alone when ``applied`` is False)."""

    dataset: str | None
    message: str
    applied: bool = True

    def render(self) -> str:
        where = f"[{self.dataset}] " if self.dataset else ""
        return f"{'migrated' if self.applied else 'left alone'}: {where}{self.message}"


def migrate_text(text: str) -> tuple[str, list[Change]]:
    """Rewrite the legacy forms of a manifest (MIG-001..MIG-008); returns (new text, changes).

    Raises ManifestError DM001 on invalid TOML (callers run ``check`` first).
    """
    doc = parse_for_edit(text)
    changes: list[Change] = []
    # MIG-001: a schema 0 manifest gains [_META] schema = 1, first in the file
    if "_META" not in doc:
        meta = tomlkit.table()
        meta["schema"] = 1
        body = list(doc.body)
        lead = 0  # the file's leading comment block stays on top
        while lead < len(body) and body[lead][0] is None:
            lead += 1
        new = tomlkit.document()
        for _, item in body[:lead]:
            new.add(item)
        new.add("_META", meta)
        new.add(tomlkit.nl())
        for key, item in body[lead:]:
            if key is None:
                new.add(item)
            else:
                new.append(key, item)
        doc = tomlkit.parse(tomlkit.dumps(new))
        changes.append(Change(None, "added [_META] schema = 1"))
    # MIG-007: the old lower-case _loaders table becomes [_LOADERS]
    if "_loaders" in doc and "_LOADERS" not in doc:
        doc["_LOADERS"] = doc["_loaders"]
        del doc["_loaders"]
        changes.append(Change(None, "renamed [_loaders] to [_LOADERS]"))
    for name in list(doc.keys()):
        if name.startswith("_"):
            continue
        table = doc[name]
        if not hasattr(table, "keys"):
            continue
        _migrate_dataset(name, table, changes)
    return tomlkit.dumps(doc), changes


def _migrate_dataset(name: str, table, changes: list[Change]) -> None:
    checksum = str(table.get("checksum", "") or "")
    # MIG-002: legacy sha256 -> checksum
    if "sha256" in table:
        legacy = str(table["sha256"])
        if not checksum and legacy:
            table["checksum"] = f"sha256:{legacy}"
            changes.append(Change(name, "sha256 = ... became checksum = \"sha256:...\""))
        elif checksum and legacy and _checksum.is_valid(checksum) and \
                _checksum.parse(checksum) != _checksum.parse(legacy):
            changes.append(Change(name, "sha256 disagrees with checksum; fix it by hand", False))
            return
        del table["sha256"]
        if not legacy:
            changes.append(Change(name, "removed the empty sha256 field"))
        elif checksum:
            changes.append(Change(name, "removed sha256, equal to checksum"))
        checksum = str(table.get("checksum", "") or "")
    # MIG-003: bare hex -> sha256:<hex>
    if checksum and ":" not in checksum and _checksum.is_valid(checksum):
        table["checksum"] = f"sha256:{checksum}"
        changes.append(Change(name, "bare checksum became sha256:<hex>"))
    # MIG-004: local_path -> storage_path
    if "local_path" in table:
        if "storage_path" not in table:
            table["storage_path"] = table["local_path"]
            changes.append(Change(name, "local_path became storage_path"))
        else:
            changes.append(Change(name, "removed local_path (storage_path is set)"))
        del table["local_path"]
    # MIG-005: derived fields are dropped
    for f in ("host", "path", "scheme"):
        if f in table:
            del table[f]
            changes.append(Change(name, f"removed the derived field {f}"))
    # MIG-006: [<ds>._LANG.shell] fetcher -> shell
    lang = table.get("_LANG")
    if lang is not None and hasattr(lang, "keys") and "shell" in lang:
        legacy_shell = lang["shell"]
        template = legacy_shell.get("fetcher") if hasattr(legacy_shell, "get") else None
        if isinstance(template, str) and not table.get("shell"):
            table["shell"] = str(template)
            del lang["shell"]
            if not list(lang.keys()):
                del table["_LANG"]
            changes.append(Change(name, "[_LANG.shell] fetcher became shell"))
    # MIG-008: forms without a safe automatic rewrite
    for f in ("python", "julia", "callable", "store", "downloads", "julia_modules",
              "python_includes"):
        if f in table:
            changes.append(Change(name, f"{f} has no automatic rewrite; see SCHEMA.md MAN-060",
                                  False))


def fill_checksums_text(text: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """Fill empty checksums of a manifest's text (SUM-003) keeping everything else (MAN-004).

    ``values`` maps dataset names to ``"<algo>:<hex>"``. A dataset whose
    ``checksum`` or ``sha256`` is already non-empty is left alone. An existing
    empty ``checksum`` gets the value in place (its comment kept); otherwise a
    line ``checksum = "<value>"`` is inserted right after the ``uri`` line, or
    after the dataset's last key when it has no ``uri``. Returns (new text, names filled).
    """
    return _set_checksums(text, values, replace=False)


def set_checksums_text(text: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """Set the checksums of a manifest's text, replacing declared ones (AUT-007, MAN-004).

    Like :func:`fill_checksums_text`, but a non-empty ``checksum`` is replaced in place
    (its comment kept), and a legacy ``sha256`` gets the new hexadecimal digest in place
    when the value is a sha256 checksum, else is removed and ``checksum`` inserted. A
    value equal to the declared one is no change. Returns (new text, names changed).
    """
    return _set_checksums(text, values, replace=True)


def _set_checksums(text: str, values: dict[str, str], replace: bool) -> tuple[str, list[str]]:
    doc = parse_for_edit(text)
    filled = []
    for name, value in values.items():
        table = doc.get(name)
        if table is None or not hasattr(table, "get"):
            continue
        if replace and table.get("sha256", "") and not table.get("checksum", ""):
            algo, _, hexd = value.partition(":")
            if algo == "sha256":
                if table["sha256"] != hexd:
                    table["sha256"] = hexd
                    filled.append(name)
                continue
            del table["sha256"]
        elif replace and table.get("checksum", "") == value:
            continue
        elif not replace and (table.get("checksum", "") or table.get("sha256", "")):
            continue  # filled meanwhile, or legacy digest present
        if "checksum" in table:
            table["checksum"] = value
        elif isinstance(table, tomlkit.items.Table) and (anchor := _anchor_key(table)):
            _insert_after(table.value, anchor, "checksum", tomlkit.item(value))
        else:
            table["checksum"] = value
        if replace and "sha256" in table:
            del table["sha256"]  # it would disagree with the new checksum (SUM-006)
        filled.append(name)
    return tomlkit.dumps(doc), filled



def _anchor_key(table) -> str | None:
    """The key a filled checksum goes under (MAN-004): ``uri`` when the table has one, else
    its last plain key. Appending at the table's end instead would put the line after the
    blank lines and comments that introduce the next table."""
    if "uri" in table:
        return "uri"
    last = None
    for key, item in table.value.body:
        if key is not None and not isinstance(item, (tomlkit.items.Table, tomlkit.items.AoT)):
            last = key.key
    return last


def _insert_after(container, key: str, new_key: str, item) -> None:
    """Insert ``new_key = item`` right after ``key`` in a tomlkit container (MAN-004: the
    filled checksum goes under its ``uri``). tomlkit has no public insert; before 0.15.3 it
    had ``_insert_after``, from 0.15.3 only ``_insert_at`` (which cannot insert at the end)."""
    if hasattr(container, "_insert_after"):
        container._insert_after(key, new_key, item)  # noqa: SLF001
        return
    from tomlkit.items import SingleKey

    idx = container._map[SingleKey(key)]  # noqa: SLF001
    idx = max(idx) if isinstance(idx, tuple) else idx
    if idx + 1 < len(container.body):
        container._insert_at(idx + 1, new_key, item)  # noqa: SLF001
    else:
        container.append(new_key, item)


def _header_root(line: str) -> str | None:
    """The first key of a ``[table]`` header line, or None when the line is not one."""
    stripped = line.strip()
    if not stripped.startswith("["):
        return None
    try:
        doc = tomllib.loads(stripped)
    except tomllib.TOMLDecodeError:
        return None
    return next(iter(doc), None)


def _dataset_lines(text: str, names: list[str]) -> tuple[list[str], list[bool]]:
    """The lines of ``text`` and, per line, whether it belongs to one of ``names``' tables:
    their headers, bodies and sub-tables, and the comment lines right above a header."""
    lines = text.splitlines(keepends=True)
    mine = [False] * len(lines)
    current: str | None = None
    for i, line in enumerate(lines):
        root = _header_root(line)
        if root is not None:
            current = root
        mine[i] = current in names
    # the comment lines right above a header belong to that header's table
    for i, line in enumerate(lines):
        root = _header_root(line)
        if root is None:
            continue
        j = i - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            mine[j] = root in names
            j -= 1
    return lines, mine


def dataset_text(text: str, name: str) -> str:
    """The lines of the manifest that declare dataset ``name`` (its tables and the comments
    above them), as written; ``""`` when it is not written as tables of its own."""
    lines, mine = _dataset_lines(text, [name])
    return "".join(line for line, m in zip(lines, mine) if m).strip("\n") + "\n" \
        if any(mine) else ""


def remove_datasets_text(text: str, names: list[str]) -> str:
    """The manifest text without the tables of ``names`` (MNT-022 ``--prune``, MAN-004).

    Each dataset's header, body and sub-tables go, with the comment lines right above its
    header (they describe it); everything else, comments included, stays as it was. A
    dataset written some other way (dotted keys at the top level) is removed by tomlkit.
    """
    lines, drop = _dataset_lines(text, names)
    new = "".join(line for line, d in zip(lines, drop) if not d)
    new = re.sub(r"\n{3,}", "\n\n", new).rstrip("\n") + "\n" if new.strip() else ""
    expected = {k: v for k, v in tomllib.loads(text).items() if k not in names}
    if tomllib.loads(new) != expected:
        doc = parse_for_edit(text)
        for name in names:
            if name in doc:
                del doc[name]
        return tomlkit.dumps(doc)
    return new
