"""Storage keys: derivation from a dataset's source and safety (SCHEMA.md §6, KEY-001..KEY-007).

A key is the machine-independent relative path under which a dataset lives in
a store (``<datasets_dir>/<key>``). Pure functions; no I/O.
"""

from __future__ import annotations

import functools

import hashlib
import posixpath
import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from .schemes import names_of

#: the schemes of git sources (FET-014) and of rsync over SSH (FET-015), from the table
_GIT, _RSYNC = names_of("git"), names_of("ssh")

#: Suffixes reserved for control files next to a dataset (STO-005, KEY-004).
RESERVED_SUFFIXES = (".tmp", ".lock", ".complete", ".part")
#: Archive suffixes stripped from the key of an extracted dataset (STO-002).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")

#: JSON Schema pattern of an explicit ``key`` (KEY-004; schemas carry it verbatim).
KEY_PATTERN = (
    r"^$|^(?![/\\])(?![A-Za-z]:[/\\])(?!.*(?:^|/)\.\.?(?:/|$))(?!.*//)(?!.*/$)"
    r"(?!.*\.(?:tmp|lock|complete|part)$)[^\\\x00-\x1f\x7f]+$"
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class UnsafeKey(ValueError):
    """A key or path fails KEY-004 / STO-004. ``str(err)`` says which part and why."""


def check_key(key: str) -> None:
    """Raise :class:`UnsafeKey` unless ``key`` is a safe relative store key (KEY-004).

    A safe key is non-empty, relative, ``/``-separated, has no empty, ``.`` or
    ``..`` segment, no backslash or control character, and its last segment
    does not end in a reserved control-file suffix.
    """
    if key == "":
        raise UnsafeKey("the key is empty")
    if _CONTROL.search(key):
        raise UnsafeKey("the key contains a control character")
    if "\\" in key:
        raise UnsafeKey("the key contains a backslash; separate segments with '/'")
    if key.startswith("/") or _WINDOWS_DRIVE.match(key):
        raise UnsafeKey(f"the key {key!r} is absolute")
    segments = key.split("/")
    for seg in segments:
        if seg == "":
            raise UnsafeKey(f"the key {key!r} has an empty segment")
        if seg in (".", ".."):
            raise UnsafeKey(f"the key {key!r} has a {seg!r} segment")
    last = segments[-1]
    for suffix in RESERVED_SUFFIXES:
        if last.endswith(suffix):
            raise UnsafeKey(f"the key {key!r} ends in {suffix!r}, reserved for control files")


#: ``scheme://host/path`` with nothing ``urlsplit`` would treat specially (no user info,
#: port, IPv6 brackets, query, fragment, white space or control characters): its parts are
#: read by position, which gives exactly what ``urlsplit`` gives, in a tenth of the time.
_PLAIN_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([A-Za-z0-9._~-]+)(/[^?#\x00-\x20\x7f]*)?")


@functools.lru_cache(maxsize=65536)
def _split(uri: str):
    """``urlsplit`` that reports an unparsable URI as :class:`UnsafeKey`."""
    m = _PLAIN_URL.fullmatch(uri)
    if m is not None:
        return SplitResult(m.group(1).lower(), m.group(2), m.group(3) or "", "", "")
    try:
        parts = urlsplit(uri)
        parts.hostname  # noqa: B018 - may raise on a malformed netloc
        return parts
    except ValueError as e:
        raise UnsafeKey(f"the URI {uri!r} cannot be parsed: {e}") from e


def _split_format(query: str) -> tuple[str, str]:
    """Split a query string into (format value, remaining query)."""
    if not query:
        return "", ""
    pairs = parse_qsl(query, keep_blank_values=True)
    fmt = ""
    rest = []
    for k, v in pairs:
        if k == "format" and not fmt:
            fmt = v
        else:
            rest.append((k, v))
    return fmt, urlencode(rest)


def _source_parts(uri: str) -> tuple[str, str, str]:
    """(host, path, query) of a URI or plain path for key derivation (KEY-002)."""
    if _WINDOWS_DRIVE.match(uri):
        return "", "/" + uri[3:].replace("\\", "/"), ""
    m = _PLAIN_URL.fullmatch(uri)
    if m is not None and m.group(1).lower() != "file":  # its host is its netloc
        return m.group(2).lower(), m.group(3) or "", ""
    parts = _split(uri)
    if parts.scheme in ("", "file"):
        return "", parts.path, parts.query
    host = (parts.hostname or "").lower()
    return host, parts.path, parts.query


def derive_key(uri: str = "", uris: list[str] | tuple[str, ...] = (), version: str = "") -> str:
    """Derive the storage key of a dataset from its source (KEY-002, KEY-003).

    * one ``uri``: ``<host>/<path>`` with the port, user info and fragment
      dropped, a ``format=`` query parameter removed, and any other query
      recorded as the suffix ``-q<first 12 hex of sha256(query)>``; for
      ``file://`` URIs and plain paths the host is empty and a leading ``/``
      or ``./`` is dropped;
    * ``uris``: ``<host>/<longest common directory>`` of the members (all
      members must share a host);
    * a non-empty ``version`` appends ``#<version>``.

    Raises :class:`UnsafeKey` when the result fails :func:`check_key` (KEY-005),
    e.g. a relative path with ``..`` or a URI with an empty segment.
    """
    if uri:
        host, path, query = _source_parts(uri)
        _, rest = _split_format(query)
        path = path.lstrip("/")
        while path.startswith("./"):
            path = path[2:]
        key = f"{host}/{path}" if host else path
        key = key.rstrip("/") if key.endswith("/") and key != "/" else key
        if rest:
            key += "-q" + hashlib.sha256(rest.encode()).hexdigest()[:12]
    elif uris:
        hosts = set()
        dirs = []
        for u in uris:
            host, path, _ = _source_parts(u)
            hosts.add(host)
            dirs.append(posixpath.dirname(path.lstrip("/")))
        if len(hosts) > 1:
            raise UnsafeKey("the uris are on different hosts, so no common key can be derived")
        common = posixpath.commonpath(dirs) if all(dirs) else ""
        host = hosts.pop()
        key = "/".join(p for p in (host, common) if p)
    else:
        raise UnsafeKey("the dataset has neither uri nor uris to derive a key from")
    if version:
        if "/" in version or "\\" in version:
            raise UnsafeKey(f"the version {version!r} contains a path separator")
        key += f"#{version}"
    check_key(key)
    return key


def query_format(uri: str) -> str:
    """The ``format=`` query parameter of ``uri``, or ``""`` (MAN-025)."""
    if "?" not in uri:
        return ""
    try:
        return _split_format(_split(uri).query)[0]
    except UnsafeKey:
        return ""


@functools.lru_cache(maxsize=65536)
def infer_format(uri: str) -> str:
    """The format of a dataset from its URI: ``?format=``, else the file extension (MAN-025).

    Compound archive extensions are recognized (``.tar.gz`` and ``.tgz`` give
    ``"tar.gz"``). Returns ``""`` when nothing can be inferred.
    """
    fmt = query_format(uri)
    if fmt:
        return fmt.lower()
    try:
        path = _split(uri).path if not _WINDOWS_DRIVE.match(uri) else uri
    except UnsafeKey:
        return ""
    name = posixpath.basename(path.rstrip("/")).lower()
    if name.endswith(".tar.gz") or name.endswith(".tgz"):
        return "tar.gz"
    if "." in name.strip("."):
        return name.rsplit(".", 1)[1]
    return ""


def extracted_key(key: str) -> str:
    """The key of the directory an archive dataset is extracted to (STO-002).

    A known archive suffix is stripped; otherwise ``.d`` is appended.
    """
    lower = key.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(key) > len(suffix) and not key[: -len(suffix)].endswith("/"):
            return key[: -len(suffix)]
    return key + ".d"


def is_git_uri(uri: str) -> bool:
    """git sources (FET-014): git://, ssh+git://, git+<scheme>://, or a path ending in .git."""
    try:
        parts = _split(uri)
    except UnsafeKey:
        return False
    scheme = parts.scheme.lower()
    if scheme in _GIT or scheme.startswith("git+"):
        return True
    return parts.path.rstrip("/").endswith(".git")


@functools.lru_cache(maxsize=65536)
def is_folder_uri(uri: str) -> bool:
    """A single URI that names a folder dataset: a git clone (FET-014), or an ssh/rsync/sshfs
    path ending in '/' (FET-015)."""
    if is_git_uri(uri):
        return True
    try:
        parts = _split(uri)
    except UnsafeKey:
        return False
    return parts.scheme.lower() in _RSYNC and parts.path.endswith("/")
