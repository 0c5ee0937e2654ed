"""Authoring: dataset names, new manifest entries and other tools' lists (SCHEMA.md §24).

Pure: text in, text or declarations out; no file system, no network. The verbs that
write a user's manifest (``init``, ``add``, ``import``, ...) live in
:mod:`datamanifest.author` and call these.

* :func:`derive_name` -- AUT-004;
* :func:`render_entry`, :func:`append_entries` -- AUT-003 (exact bytes);
* :func:`parse_pooch`, :func:`parse_urls`, :func:`parse_dvc` -- AUT-011..AUT-013, each
  returning :class:`Entry` values and located warnings, or raising :class:`SourceError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from . import checksum as _checksum

#: AUT-001: the starter manifest ``init`` writes. ``check`` reports nothing on it.
STARTER = '''\
# datamanifest.toml: the data this project depends on (SCHEMA.md).
# Declare one table per dataset, then run `datamanifest fetch`; an empty checksum
# is filled in by the first fetch, so later fetches verify the same bytes.
#
#   [example]
#   uri = "https://example.org/data/example.csv"
#   checksum = ""            # filled by `datamanifest fetch`
#   # extract = true         # unpack a zip, tar or tar.gz archive into a folder
#   # requires = ["other"]   # fetched first
#
# Or from the command line: `datamanifest add URI`, `datamanifest import pooch FILE`.
# Where datasets are stored: `datamanifest where`; per machine: `datamanifest config`.

[_META]
schema = 1
'''

#: AUT-004: archive suffixes removed whole, compared without case.
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip",
                    ".gz", ".bz2", ".xz")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")
_OUTSIDE = re.compile(r"[^A-Za-z0-9_-]+")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

#: AUT-003: the fields a new entry may carry, in the order they are written.
ENTRY_FIELDS = ("uri", "uris", "checksum", "version", "branch", "format", "extract",
                "description")


class NameTaken(ValueError):
    """AUT-004: both derived forms of a name are taken (DM141). ``name`` is the last tried."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"the dataset name {name!r} is taken")


@dataclass
class SourceError(ValueError):
    """An import source that does not parse (DM143), at 1-based ``line`` and ``column``."""

    message: str
    line: int | None = None
    column: int | None = None
    code: str = "DM143"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Warning_:
    """A located warning of an import (DM144): the entry keeps no checksum."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None


@dataclass
class Entry:
    """One dataset to declare. ``source_name`` is what its name is derived from (a
    registry name, a DVC output path; empty: the URI's last segment). ``adopt`` is where
    its bytes may already lie (AUT-010), relative to the adoption folder (a pooch cache
    folder; the manifest's folder for DVC). ``folder``: a DVC directory output, whose
    ``uri`` is its folder, to be listed into ``uris`` (AUT-012). ``line``: where the list
    declares it. ``name`` is set by :func:`assign_names`."""

    uri: str = ""
    checksum: str = ""
    source_name: str = ""
    extract: bool = False
    version: str = ""
    format: str = ""
    description: str = ""
    adopt: str = ""
    folder: bool = False
    line: int | None = None
    name: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    def table(self) -> dict[str, Any]:
        """The entry's fields that differ from their defaults, in AUT-003 order."""
        values = {"uri": "" if self.fields.get("uris") else self.uri, "checksum": self.checksum, "version": self.version,
                  "format": self.format, "extract": self.extract,
                  "description": self.description, **self.fields}
        return {k: values[k] for k in ENTRY_FIELDS if values.get(k) not in (None, "", False, [])}


# -- names (AUT-004) --------------------------------------------------------------------------
def uri_name_source(uri: str) -> str:
    """The text a name is derived from for ``uri``: its last non-empty path segment,
    percent-decoded, else its host followed by ``/`` (a host keeps its dots' parts, see
    :func:`derive_name`); for a plain path, its last segment."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and len(parts.scheme) > 1:
        path, host = parts.path, parts.hostname or parts.netloc
    else:
        path, host = uri.replace("\\", "/"), ""
    segments = [s for s in unquote(path).split("/") if s]
    return segments[-1] if segments else host + "/"


def _normalize(text: str, strip: bool) -> str:
    if strip:
        low = text.lower()
        for suffix in ARCHIVE_SUFFIXES:
            if low.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                break
        else:
            m = _EXTENSION.search(text)
            if m and m.start() > 0:
                text = text[: m.start()]
    return _OUTSIDE.sub("_", text).strip("_")


def derive_name(source: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """AUT-004: the dataset name derived from ``source`` (a path or registry name).

    ``taken`` holds the names that exist. Returns the stripped form, else the form with
    its suffix kept. A host (``source`` ending in ``/``, from :func:`uri_name_source`) is
    never stripped. Raises :class:`NameTaken` when both are taken.
    """
    host = source.endswith("/")
    first = _normalize(source, strip=not host) or "dataset"
    if first not in taken:
        return first
    second = _normalize(source, strip=False) or "dataset"
    if second not in taken:
        return second
    raise NameTaken(second)


def assign_names(entries: list[Entry], taken: set[str]) -> None:
    """Give each entry without a name one by AUT-004, in order; ``taken`` grows as names are
    given. Raises :class:`NameTaken` (DM141)."""
    for e in entries:
        if not e.name:
            e.name = derive_name(e.source_name or uri_name_source(e.uri), taken)
        elif e.name in taken:
            raise NameTaken(e.name)
        taken.add(e.name)


# -- entries (AUT-003) --------------------------------------------------------------------------
def _toml_string(value: str) -> str:
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r} in a new entry")


def toml_key(name: str) -> str:
    """A dataset name as a TOML key: bare when it can be, else a basic string (AUT-003)."""
    return name if _BARE_KEY.match(name) else _toml_string(name)


def render_entry(name: str, table: dict[str, Any]) -> str:
    """The text of a new dataset table: header, then one line per field (AUT-003)."""
    lines = [f"[{toml_key(name)}]"]
    for k in ENTRY_FIELDS:
        if k in table:
            lines.append(f"{k} = {_toml_value(table[k])}")
    return "\n".join(lines) + "\n"


def append_entries(text: str, entries: list[tuple[str, dict[str, Any]]]) -> str:
    """``text`` with the new tables appended, each after one blank line (AUT-003)."""
    out = text
    for name, table in entries:
        block = render_entry(name, table)
        if not out.strip():
            out = out + block if out.endswith("\n") or not out else out + "\n" + block
            continue
        out = out.rstrip("\n") + "\n\n" + block
    return out


# -- other tools' lists (AUT-011..AUT-013) ---------------------------------------------------------
def _fields(line: str) -> list[tuple[int, str]]:
    """White-space separated fields of ``line`` with their 1-based columns."""
    return [(m.start() + 1, m.group()) for m in re.finditer(r"\S+", line)]


def _import_checksum(value: str, line: int, column: int,
                     warnings: list[Warning_]) -> str:
    """A list's digest as a checksum of §5; "" with a DM144 warning when its algorithm is not
    one of SUM-002. Raises :class:`SourceError` for a malformed one."""
    algo, sep, hexd = value.partition(":")
    if not sep:
        algo, hexd = _checksum.DEFAULT_ALGORITHM, value
    algo = algo.lower()
    if algo not in _checksum.ALGORITHMS:
        warnings.append(Warning_("DM144", f"the {algo} digest cannot be a checksum here "
                                 f"(SUM-002); the entry is declared without one", line, column))
        return ""
    candidate = f"{algo}:{hexd.lower()}"
    if not _checksum.is_valid(candidate):
        raise SourceError(f"malformed digest {value!r}: {_checksum.explain_invalid(candidate)[1]}",
                          line, column)
    return candidate


def _lines(text: str):
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            yield number, raw


def parse_pooch(text: str, base_url: str = "") -> tuple[list[Entry], list[Warning_]]:
    """AUT-011: the entries of a pooch registry file (``NAME HASH [URL]`` per line).

    Raises :class:`SourceError` (DM143) at the line of a malformed entry.
    """
    entries: list[Entry] = []
    warnings: list[Warning_] = []
    for number, raw in _lines(text):
        fields = _fields(raw)
        if len(fields) not in (2, 3):
            raise SourceError(f"a registry line is NAME HASH [URL], found {len(fields)} "
                              f"field(s)", number, fields[0][0])
        (_, name), (hcol, digest) = fields[0], fields[1]
        if len(fields) == 3:
            uri = fields[2][1]
        elif base_url:
            uri = base_url + ("" if base_url.endswith("/") else "/") + name
        else:
            raise SourceError(f"{name!r} has no URL and the import has no base URL", number,
                              fields[0][0])
        entries.append(Entry(uri=uri, checksum=_import_checksum(digest, number, hcol, warnings),
                             source_name=name, adopt=name, line=number))
    return entries, warnings


def parse_urls(text: str) -> tuple[list[Entry], list[Warning_]]:
    """AUT-013: the entries of a URL list (``URI [CHECKSUM]`` per line).

    Raises :class:`SourceError` (DM143) at the line of a malformed entry.
    """
    entries: list[Entry] = []
    for number, raw in _lines(text):
        fields = _fields(raw)
        if len(fields) > 2:
            raise SourceError(f"a URL list line is URI [CHECKSUM], found {len(fields)} fields",
                              number, fields[2][0])
        value = fields[1][1] if len(fields) == 2 else ""
        if value and not _checksum.is_valid(value):
            raise SourceError(f"malformed checksum {value!r}: "
                              f"{_checksum.explain_invalid(value)[1]}", number, fields[1][0])
        entries.append(Entry(uri=fields[0][1],
                             checksum=str(_checksum.parse(value)) if value else "", line=number))
    return entries, []


def expand_folders(entries: list[Entry], files_below: Any) -> tuple[list[Entry], list[Warning_]]:
    """AUT-012: each DVC directory output becomes ``uris``: the files below its folder, in
    code point order of their paths; one whose folder has none is dropped with DM144.

    ``files_below(folder)`` returns the paths of the files below ``folder`` (both relative
    to the manifest's folder, POSIX separators; ``[]`` when it is absent).
    """
    kept: list[Entry] = []
    warnings: list[Warning_] = []
    for e in entries:
        if not e.folder:
            kept.append(e)
            continue
        files = sorted(files_below(e.uri))
        if not files:
            warnings.append(Warning_("DM144", f"directory output {e.uri!r} is not in the "
                                     "workspace, so its files cannot be listed; skipped",
                                     e.line, 1))
            continue
        e.fields["uris"] = [f"{e.uri}/{p}" for p in files]
        kept.append(e)
    return kept, warnings


def _dvc_error(message: str, node: Any) -> SourceError:
    mark = getattr(node, "start_mark", None)
    if mark is None:
        return SourceError(message)
    return SourceError(message, mark.line + 1, mark.column + 1)


def parse_dvc(node: Any, folder: str) -> tuple[list[Entry], list[Warning_]]:
    """AUT-012: the entries of one DVC file, given as its composed YAML node
    (``yaml.compose``), so that every problem has a line and column.

    ``folder`` is the DVC file's folder relative to the manifest's (``""`` when the same;
    POSIX separators). Raises :class:`SourceError` (DM143).
    """
    def mapping(n: Any) -> dict[str, Any]:
        if getattr(n, "tag", "").endswith(":map") and hasattr(n, "value"):
            return {k.value: v for k, v in n.value}
        raise _dvc_error("expected a mapping", n)

    def scalar(n: Any, what: str) -> str:
        if n is not None and getattr(n, "tag", "").split(":")[-1] in ("str", "int", "float"):
            return str(n.value)
        raise _dvc_error(f"{what} must be a string", n)

    def items(n: Any, what: str) -> list[Any]:
        if n is None:
            return []
        if getattr(n, "tag", "").endswith(":seq"):
            return list(n.value)
        raise _dvc_error(f"{what} must be a list", n)

    if node is None:
        raise SourceError("the DVC file is empty", 1, 1)
    top = mapping(node)
    deps = items(top.get("deps"), "deps")
    url = ""
    if len(deps) == 1:
        dep = mapping(deps[0])
        path = scalar(dep.get("path"), "deps path") if "path" in dep else ""
        if _SCHEME.match(path):
            url = path
    entries: list[Entry] = []
    warnings: list[Warning_] = []
    for item in items(top.get("outs"), "outs"):
        out = mapping(item)
        if "path" not in out:
            continue
        path = scalar(out["path"], "outs path")
        rel = "/".join(p for p in (folder, path) if p)
        digest_node = out.get("md5")
        checksum = ""
        folder = False
        if digest_node is not None:
            digest = scalar(digest_node, "md5")
            mark = digest_node.start_mark
            declared = scalar(out["hash"], "hash") if "hash" in out else ""
            if digest.endswith(".dir"):
                folder = True
                warnings.append(Warning_("DM144", "a DVC directory listing (.dir) is not a tree "
                                         "checksum; the folder is declared without one",
                                         mark.line + 1, mark.column + 1))
            elif declared != "md5":
                warnings.append(Warning_("DM144", "a DVC 2 md5 (text files hashed after "
                                         "converting line ends) is not the md5 of the bytes; "
                                         "declared without a checksum",
                                         mark.line + 1, mark.column + 1))
            else:
                checksum = _import_checksum("md5:" + digest, mark.line + 1, mark.column + 1,
                                            warnings)
        entries.append(Entry(uri=url or rel, checksum=checksum, source_name=path, adopt=rel,
                             folder=folder and not url, line=out["path"].start_mark.line + 1))
    return entries, warnings


# -- an edit that declares entries (AUT-003, AUT-004, AUT-010) ----------------------------------------
@dataclass
class Plan:
    """What declaring ``entries`` does to a manifest: the ``added`` entries (named), the
    ``skipped`` ones with the name of the dataset that already has their key, and the
    new ``text``."""

    text: str
    added: list[Entry]
    skipped: list[tuple[Entry, str]]


def entry_key(e: Entry) -> str | None:
    """The storage key an entry will have (KEY-002), or None when none derives (the edit's
    check then reports DM031)."""
    from . import keys

    try:
        return keys.derive_key(e.uri if not e.fields.get("uris") else "",
                               e.fields.get("uris", ()), e.version)
    except keys.UnsafeKey:
        return None


def plan(text: str, data: dict[str, Any], entries: list[Entry]) -> Plan:
    """Declare ``entries`` in the manifest ``text`` (parsed: ``data``).

    An entry whose key a dataset already has (or an earlier entry) is skipped (AUT-010);
    the others are named (AUT-004) and appended (AUT-003). Raises :class:`NameTaken`.
    """
    from .keys import UnsafeKey
    from .manifest import Dataset

    owners: dict[str, str] = {}
    for name, table in data.items():
        if name.startswith("_") or not isinstance(table, dict):
            continue
        try:
            owners.setdefault(Dataset.model_validate(table).derived_key, name)
        except (UnsafeKey, ValueError):
            continue
    taken = {k for k in data if not k.startswith("_")}
    added: list[Entry] = []
    skipped: list[tuple[Entry, str]] = []
    for e in entries:
        key = entry_key(e)
        if key is not None and key in owners:
            skipped.append((e, owners[key]))
            continue
        assign_names([e], taken)
        if key is not None:
            owners[key] = e.name
        added.append(e)
    new = append_entries(text, [(e.name, e.table()) for e in added]) if added else text
    return Plan(new, added, skipped)
