"""Places: URIs opened by their scheme's family (SCHEMA.md FET-001, FET-011, FET-014..FET-016,
CHK-007).

The scheme table itself (:data:`SCHEMES`: each scheme's family, extra and the capabilities
that accept it) lives in the pure layer, :mod:`datamanifest.spec.schemes`, and is
re-exported here. :func:`open_stream` and :func:`open_ranges` open a place by its family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import DataManifestError, FetchError
from ..spec.schemes import (  # noqa: F401 - the table's names, re-exported here
    ALL, PLANNED, SCHEMES, Scheme, accepted, family_of, names_of, scheme_of,
)
from .base import RangeReader, Stream


def local_path(uri: str, base: Path | None = None) -> Path:
    """The local path of a ``file://`` URI or plain path (``~`` expanded); a relative one is
    relative to ``base`` when given (FET-011: the manifest's folder)."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    p = Path(os.path.expanduser(uri))
    return p if p.is_absolute() or base is None else base / p


def host_of(uri: str) -> str:
    """The host of a URL with ``://``; ``""`` for a local path or one that cannot be parsed."""
    try:
        return (urlsplit(uri).hostname or "") if "://" in uri else ""
    except ValueError:
        return ""


def unsupported(uri: str, use: str, error: type[DataManifestError] = FetchError,
                code: str = "DM072", what: str = "URI scheme") -> DataManifestError:
    """The error for a scheme the capability ``use`` does not accept: ``code`` (DM072 by
    default) naming the scheme and, as the hint, what would add it or what is supported."""
    scheme = scheme_of(uri)
    return error(f"unsupported {what} {scheme!r} in {uri}", code=code,
                 hint=PLANNED.get(scheme, "supported: " + ", ".join(accepted(use, aliases=False))))


def open_stream(uri: str, base: Path) -> Stream:
    """Open ``uri`` to read it whole, front to back (FET-001): a local file, an http(s)
    GET, an object. Relative paths are relative to ``base``. Raises FetchError: DM072 for
    a scheme fetch does not stream from, and the family's errors (DM071, DM074, DM170)."""
    scheme = scheme_of(uri)
    family = SCHEMES[scheme].family if scheme in SCHEMES and "fetch" in SCHEMES[scheme].uses \
        else None
    if family == "local":
        from .local import FileStream

        return FileStream(local_path(uri, base))
    if family == "http":
        from .http import HTTPStream

        return HTTPStream(uri)
    if family == "s3":
        from .objects import S3Stream

        return S3Stream(uri)
    if family in ("gs", "az"):
        from .objects import FsspecStream

        return FsspecStream(uri)
    raise unsupported(uri, "fetch")


def open_ranges(url: str, error: type[DataManifestError] = DataManifestError) -> RangeReader:
    """The :class:`~datamanifest.io.base.RangeReader` of an absolute URL or a local path
    (CHK-012). Raises ``error``: DM072 for a scheme without a range reader, DM074 absent,
    DM015 a malformed URL, DM071 a store that cannot be reached."""
    try:
        scheme = urlsplit(url).scheme.lower() if "://" in url else "file"
    except ValueError as e:  # e.g. an unclosed IPv6 bracket
        raise error(f"{url} is not a valid URL: {e}", code="DM015") from e
    found = SCHEMES.get(scheme)
    family = found.family if found is not None and "virtual" in found.uses else None
    if family == "local":
        from .local import LocalRanges

        return LocalRanges(url, local_path(url), error)
    if family == "http":
        from .http import HTTPRanges

        return HTTPRanges(url, error=error)
    if family in ("s3", "gs", "az"):
        from .objects import ObjectRanges

        return ObjectRanges(url, error)
    raise error(f"no reader for {scheme}:// sources ({url})", code="DM072",
                hint="chunk manifests read " + ", ".join(accepted("virtual", aliases=False))
                + " sources")


def probe(uri: str, base: Path) -> dict:
    """What a dry run can learn about a source without reading it (``fetch --dry-run``):
    ``{"size": bytes or None, "reachable": True/False/None, "problem": text or None}``. A
    local file is stat'ed; an http(s) URL gets one HEAD request (its Content-Length);
    other schemes are not contacted (``reachable`` None). Never raises."""
    family = family_of(uri)
    if family == "local":
        p = local_path(uri, base)
        try:
            st = p.stat()
        except OSError as e:
            return {"size": None, "reachable": False, "problem": e.strerror or str(e)}
        return {"size": st.st_size if p.is_file() else None, "reachable": True, "problem": None}
    if family == "http":
        from .http import probe as head

        return head(uri)
    return {"size": None, "reachable": None, "problem": None}
