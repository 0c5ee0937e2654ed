"""Produced datasets: layout, markers, hit verdicts, state records and legacy indexes (SCHEMA.md §21).

Pure: paths are strings joined with ``/``, documents are parsed dicts, and the
files on disk are described by the caller. The I/O edge is
:mod:`datamanifest.cache`.

=========  =====================================================================
PRD-010    ``A = <datacache_dir>/<cache key>``; ``A/config.toml``, ``A/metadata.toml``,
           ``A/<basename>.<format>``, ``A/.complete``; ``A.lock``, ``A.tmp`` beside it
PRD-011    the marker ``{"formats": {fmt: {"file", "checksum", "size"}}}``
PRD-020    when a folder is a hit for an identity and a format
PRD-030    ``[datacache."<cachetype>[@<version>]"]`` records
PRD-031    state-journal lines
PRD-032    legacy indexes (state schemas 1-4, ``cached.toml``) read as schema 5
=========  =====================================================================
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import paramhash

MARKER = ".complete"
CONFIG = "config.toml"
METADATA = "metadata.toml"
DEFAULT_BASENAME = "data"
#: legacy index names read in the project root (PRD-032)
LEGACY_INDEX_NAMES = (".datamanifest-state.toml", "cached.toml")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Identity:
    """``(cachetype, version, hash)`` of an artifact (PRD-001)."""

    cachetype: str
    version: str
    hash: str

    @property
    def cache_key(self) -> str:
        """``<cachetype>/[<version>/]<hash>`` (PAR-008)."""
        if self.version:
            return f"{self.cachetype}/{self.version}/{self.hash}"
        return f"{self.cachetype}/{self.hash}"

    @property
    def record_key(self) -> str:
        """The state table key ``<cachetype>[@<version>]`` (SC-004, PRD-030)."""
        return f"{self.cachetype}@{self.version}" if self.version else self.cachetype


def identity(cachetype: str, key_table: Mapping[str, Any], version: str = "") -> Identity:
    """The identity of ``key_table`` under ``cachetype``/``version``.

    Raises :class:`~datamanifest.spec.paramhash.ParameterError` (DM100) for a value
    without canonical form or an invalid cachetype/version (PAR-007, PAR-008).
    """
    key = paramhash.cache_key(cachetype, dict(key_table), version)
    return Identity(cachetype, version, key.rsplit("/", 1)[1])


def check_format(name: str) -> None:
    """A format name is a file extension: ``[A-Za-z0-9][A-Za-z0-9_.+-]*`` (PRD-012)."""
    if not _FORMAT.match(name):
        raise ValueError(f"format {name!r} is not a file extension")


def data_entry(fmt: str, basename: str = DEFAULT_BASENAME) -> str:
    """The data entry's name ``<basename>.<format>`` (PRD-010)."""
    return f"{basename}.{fmt}"


@dataclass(frozen=True)
class Layout:
    """Where an artifact and its control files live (PRD-010), as ``/``-joined strings."""

    folder: str

    @property
    def marker(self) -> str:
        return f"{self.folder}/{MARKER}"

    @property
    def lock(self) -> str:
        return f"{self.folder}.lock"

    @property
    def staging(self) -> str:
        return f"{self.folder}.tmp"

    def entry(self, fmt: str, basename: str = DEFAULT_BASENAME) -> str:
        return f"{self.folder}/{data_entry(fmt, basename)}"


def layout(root: str, ident: Identity) -> Layout:
    """The artifact of ``ident`` under the store ``root`` (a datacache_dir or a pool)."""
    return Layout(f"{root.rstrip('/')}/{ident.cache_key}")


# -- the marker (PRD-011) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Marker:
    """A parsed marker: ``formats`` lists ``{format: {"file", "checksum", "size"}}`` (None
    when the marker lists nothing: empty, the ecosystem's, or unreadable); ``config`` is
    the recorded ``sha256:<hex>`` of ``config.toml``'s bytes, if any."""

    formats: dict[str, dict[str, Any]] | None
    config: str | None = None


def read_marker(text: str) -> Marker:
    """Parse a marker's text (PRD-011); never raises."""
    try:
        doc = json.loads(text) if text.strip() else None
    except ValueError:
        return Marker(None)
    if not isinstance(doc, dict):
        return Marker(None)
    config = doc.get("config") if isinstance(doc.get("config"), str) else None
    formats = doc.get("formats")
    if not isinstance(formats, dict):
        return Marker(None, config)
    out: dict[str, dict[str, Any]] = {}
    for fmt, rec in formats.items():
        if isinstance(rec, dict) and isinstance(rec.get("file"), str) \
                and isinstance(rec.get("checksum"), str) and isinstance(rec.get("size"), int):
            out[fmt] = rec
    return Marker(out, config)


def parse_marker(text: str) -> dict[str, dict[str, Any]] | None:
    """The formats a marker lists (see :func:`read_marker`)."""
    return read_marker(text).formats


def render_marker(formats: Mapping[str, Mapping[str, Any]], config: str | None = None) -> str:
    """The marker text listing ``formats`` and the digest of ``config.toml`` (sorted, compact,
    one line)."""
    body: dict[str, Any] = {"formats": {
        f: {"file": r["file"], "checksum": r["checksum"], "size": r["size"]}
        for f, r in sorted(formats.items())}}
    if config:
        body["config"] = config
    return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"


def config_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``config.toml``'s bytes, as a marker records it (PRD-011)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- hit verdicts (PRD-020) -------------------------------------------------------------------------
def config_matches(data: Mapping[str, Any] | None, ident: Identity) -> bool:
    """Does a parsed ``config.toml`` describe ``ident``, with a hash that recomputes (SC-003)?"""
    if not isinstance(data, Mapping):
        return False
    meta = data.get("_META")
    if not isinstance(meta, Mapping) or meta.get("schema") != 1:
        return False
    if meta.get("cachetype") != ident.cachetype or (meta.get("version") or "") != ident.version:
        return False
    if meta.get("hash") != ident.hash:
        return False
    table = {k: v for k, v in data.items() if k != "_META"}
    try:
        return paramhash.parameter_hash(table) == ident.hash
    except paramhash.ParameterError:  # a TOML date-time has no canonical form (SC-002)
        return False


def config_bytes_match(data: bytes | None, ident: Identity) -> bool:
    """:func:`config_matches` on the bytes of a ``config.toml`` (False when unparsable)."""
    if data is None:
        return False
    try:
        return config_matches(tomllib.loads(data.decode("utf-8")), ident)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def verdict(*, marker: str | None, config: bytes | None, entry_exists: bool,
            ident: Identity, fmt: str, entry_name: str) -> tuple[bool, str, Marker | None]:
    """(hit, reason, parsed marker) for one candidate folder described by what was read
    (PRD-020). ``marker`` is the marker's text and ``config`` the bytes of
    ``config.toml`` (each None when absent).

    When the marker records the digest of ``config.toml`` and the bytes match it, the
    file is the one its producer wrote after checking it, and is not parsed again
    (PRD-020); otherwise it is parsed and its hash recomputed (SC-003).
    """
    if marker is None:
        return False, "no completion marker", None
    m = read_marker(marker)
    if not entry_exists:
        return False, f"no {entry_name}", m
    if m.formats is not None and m.formats.get(fmt, {}).get("file") != entry_name:
        return False, f"the marker does not list {fmt}", m
    if config is None:
        return False, "no config.toml", m
    if not (m.config is not None and config_digest(config) == m.config) \
            and not config_bytes_match(config, ident):
        return False, "config.toml is unreadable or does not match", m
    return True, "hit", m


def find_in_description(ident: Identity, fmt: str, basename: str, datacache_dir: str,
                        pools: list[str], recorded: str | None,
                        files: Mapping[str, str | None]) -> dict[str, Any]:
    """The candidates (PRD-021) and the hit (PRD-020, PRD-022) over described files.

    ``files`` maps a path to its UTF-8 text, or to None for a folder; ``recorded`` is
    the folder the state file records (absolute), if any. Digests of file entries are
    the SHA-256 of their UTF-8 bytes. Returns ``{"candidates": [...], "hit": {"folder",
    "source"} or None}``; the conformance kind ``produce`` answers with it.
    """
    store = datacache_dir.rstrip("/")
    a = f"{store}/{ident.cache_key}"
    cands: list[tuple[str, str]] = [(a, "store")]
    if recorded and recorded != a:
        cands.append((recorded, "recorded"))
    cands += [(f"{p.rstrip('/')}/{ident.cache_key}", "pool") for p in pools
              if p.rstrip("/") != store]
    name = data_entry(fmt, basename)
    hit = None
    for folder, source in cands:
        marker = files.get(f"{folder}/{MARKER}") if f"{folder}/{MARKER}" in files else None
        text = files.get(f"{folder}/{CONFIG}")
        ok, _, m = verdict(marker=marker, config=text.encode("utf-8") if isinstance(text, str)
                           else None, entry_exists=f"{folder}/{name}" in files, ident=ident,
                           fmt=fmt, entry_name=name)
        in_pool = source == "pool" or any(folder.startswith(p.rstrip("/") + "/") for p in pools)
        if ok and in_pool:
            rec = (m.formats or {}).get(fmt) if m else None
            data = files.get(f"{folder}/{name}")
            ok = rec is not None and isinstance(data, str) and \
                rec["size"] == len(data.encode("utf-8")) and \
                rec["checksum"] == "sha256:" + hashlib.sha256(data.encode("utf-8")).hexdigest()
        if ok:
            hit = {"folder": folder, "source": source}
            break
    return {"candidates": [c for c, _ in cands], "hit": hit}


# -- the state file's [datacache] (PRD-030, PRD-031) ----------------------------------------------
def split_record_key(key: str) -> tuple[str, str]:
    """``"<cachetype>@<version>"`` → ``(cachetype, version)``."""
    cachetype, _, version = key.partition("@")
    return cachetype, version


def merge_instance(datacache: dict[str, Any], key: str, hash_: str, path: str | None, *,
                   ref: str = "", fmt: str = "") -> None:
    """Add, replace (``path``) or remove (``path=None``) one instance in ``datacache``.

    Formats are unioned into ``formats``; ``format`` keeps the first one recorded;
    ``ref`` is replaced by a non-empty one. A recipe left without instances is dropped.
    """
    rec = datacache.get(key)
    if not isinstance(rec, dict):
        if path is None:
            return
        rec = datacache[key] = {}
    instances = rec.get("instances")
    if not isinstance(instances, dict):
        instances = rec["instances"] = {}
    if path is None:
        instances.pop(hash_, None)
        if not instances:
            del datacache[key]
        return
    instances[hash_] = path
    if ref:
        rec["ref"] = ref
    else:
        rec.setdefault("ref", "")
    if fmt:
        if not rec.get("format"):
            rec["format"] = fmt
        formats = rec.get("formats")
        formats = set(formats) if isinstance(formats, list) else set()
        if rec.get("format"):
            formats.add(rec["format"])
        formats.add(fmt)
        rec["formats"] = sorted(formats)


def merge_datacache(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Merge every instance of the ``[datacache]`` table ``other`` into ``into``."""
    for key, rec in other.items():
        if not isinstance(rec, Mapping):
            continue
        formats = rec.get("formats") if isinstance(rec.get("formats"), list) else []
        fmts = [f for f in [rec.get("format"), *formats] if isinstance(f, str) and f] or [""]
        for h, p in _instances_of(rec).items():
            for fmt in fmts:
                merge_instance(into, key, h, p, ref=str(rec.get("ref") or ""), fmt=fmt)


def journal_line(key: str, hash_: str, path: str | None, *, ref: str = "", fmt: str = "") -> str:
    """One state-journal line (PRD-031), ending in a newline."""
    rec: dict[str, Any] = {"table": "datacache", "key": key, "hash": hash_}
    if path is None:
        rec["forget"] = True
    else:
        rec.update(path=path, ref=ref, format=fmt)
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"


def apply_journal(datacache: dict[str, Any], text: str) -> int:
    """Apply journal ``text`` to ``datacache`` in order; returns the lines applied.

    Lines that are not complete records of PRD-031's shape (a torn tail) are ignored.
    """
    applied = 0
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or rec.get("table") != "datacache":
            continue
        key, h = rec.get("key"), rec.get("hash")
        if not isinstance(key, str) or not key or not isinstance(h, str) or not _HEX64.match(h):
            continue
        if rec.get("forget") is True:
            merge_instance(datacache, key, h, None)
        elif isinstance(rec.get("path"), str) and rec["path"]:
            merge_instance(datacache, key, h, rec["path"], ref=str(rec.get("ref") or ""),
                           fmt=str(rec.get("format") or ""))
        else:
            continue
        applied += 1
    return applied


# -- legacy indexes (PRD-032) -------------------------------------------------------------------------
def legacy_schema(data: Mapping[str, Any]) -> int:
    """The schema of a state document (1 when there is no ``_META``)."""
    meta = data.get("_META")
    schema = meta.get("schema", 1) if isinstance(meta, Mapping) else 1
    return schema if isinstance(schema, int) and not isinstance(schema, bool) else 1


def _instances_of(rec: Mapping[str, Any]) -> dict[str, str]:
    inst = rec.get("instances")
    if not isinstance(inst, Mapping):
        return {}
    return {h: p for h, p in inst.items() if isinstance(h, str) and _HEX64.match(h)
            and isinstance(p, str)}


def legacy_tables(data: Mapping[str, Any]) -> list[str]:
    """The top-level tables of a legacy document that :func:`legacy_datacache` interprets."""
    schema = legacy_schema(data)
    if schema >= 5:
        return []
    if schema == 2:
        return ["produced"] if "produced" in data else []
    out = []
    for k, rec in data.items():
        if k == "_META" or not isinstance(rec, Mapping):
            continue
        h = rec.get("hash")
        if schema == 1 and isinstance(h, str) and _HEX64.match(h):
            out.append(k)
        elif schema in (3, 4) and isinstance(rec.get("instances"), Mapping):
            out.append(k)
    return out


def legacy_datacache(data: Mapping[str, Any], datacache_dir: str | None) -> dict[str, Any]:
    """The schema-5 ``[datacache]`` of a state document of any schema (PRD-032).

    An instance without a folder is placed at ``<datacache_dir>/<cache key>`` (left
    out when ``datacache_dir`` is None).
    Instances whose hash is not 64 lowercase hex, or whose cachetype or version is
    invalid (PAR-007, PAR-008), are left out (they can never be hits).
    """
    found: list[tuple[str, str, str, str, str, str]] = []  # ct, v, hash, path, ref, format
    schema = legacy_schema(data)

    def s(v: Any) -> str:
        return v if isinstance(v, str) else ""

    if schema >= 4:
        tables = data.get("datacache", {}) if schema >= 5 else \
            {k: v for k, v in data.items() if k != "_META"}
        for key, rec in (tables.items() if isinstance(tables, Mapping) else ()):
            if isinstance(rec, Mapping):
                ct, v = split_record_key(key)
                for h, p in _instances_of(rec).items():
                    found.append((ct, v, h, p, s(rec.get("ref")), s(rec.get("format"))))
    elif schema == 3:
        for key, rec in data.items():
            if key == "_META" or not isinstance(rec, Mapping):
                continue
            ct, v = split_record_key(key)
            parent = s(rec.get("storage_path")).rstrip("/")
            inst = rec.get("instances")
            for h in (inst if isinstance(inst, Mapping) else {}):
                if isinstance(h, str) and _HEX64.match(h):
                    found.append((ct, v, h, f"{parent}/{h}" if parent else "",
                                  s(rec.get("ref")), s(rec.get("format"))))
    elif schema == 2:
        produced = data.get("produced")
        for rec in produced if isinstance(produced, list) else ():
            if not isinstance(rec, Mapping):
                continue
            insts = rec.get("instances")
            for inst in insts if isinstance(insts, list) else ():
                h = s(inst.get("hash")) if isinstance(inst, Mapping) else ""
                if _HEX64.match(h):
                    found.append((s(rec.get("cachetype")), s(rec.get("version")), h, "",
                                  s(rec.get("ref")), s(rec.get("format"))))
    else:
        for rec in data.values():
            if isinstance(rec, Mapping) and _HEX64.match(s(rec.get("hash"))):
                found.append((s(rec.get("cachetype")), s(rec.get("version")), rec["hash"], "",
                              s(rec.get("ref")), s(rec.get("format"))))
    out: dict[str, Any] = {}
    for ct, v, h, p, ref, fmt in found:
        try:
            ident = Identity(ct, v, h)
            paramhash.check_cachetype(ct)
            if any(c in v for c in "@/\\"):
                continue
        except paramhash.ParameterError:
            continue
        if not p and datacache_dir is None:
            continue
        path = p or f"{(datacache_dir or '').rstrip('/')}/{ident.cache_key}"
        merge_instance(out, ident.record_key, h, path, ref=ref, fmt=fmt)
    return dict(sorted(out.items()))


def relative_to_root(path: str, root: str) -> str:
    """``path`` relative to the project ``root`` when inside it, else unchanged (PRD-030)."""
    root = root.rstrip("/")
    if path.startswith(root + "/"):
        return path[len(root) + 1:]
    return path


def absolute_from_root(path: str, root: str) -> str:
    """A recorded folder read back: relative ones are under the project ``root``."""
    if path.startswith("/") or (len(path) > 2 and path[1] == ":"):
        return path
    return f"{root.rstrip('/')}/{path}"
