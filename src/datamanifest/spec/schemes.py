"""The one scheme table (SCHEMA.md FET-001, FET-011, FET-014..FET-016, CHK-007, SEC-001).

:data:`SCHEMES` says, for every scheme datamanifest knows, its family (``local``,
``http``, ``s3``, ``gs``, ``az``, ``ssh``, ``git``), the extra that installs its client,
and which capabilities accept it: ``fetch`` (a dataset's ``uri``), ``virtual`` (a chunk
manifest's source), ``append`` (an append target), ``tree`` (a tree manifest of a prefix)
and ``lazy`` (a dataset opened in place, LAD-024). Every capability, and the pure rules
(keys, redaction), ask this table rather than listing schemes themselves;
:mod:`datamanifest.io.places` opens a place by its family. Pure; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

ALL = frozenset({"fetch", "virtual", "append", "tree", "lazy"})


@dataclass(frozen=True)
class Scheme:
    """One URI scheme: its ``family``, the capabilities that accept it (``uses``), the
    extra installing its client (``extra``; None: always installed) and whether it is
    another name of a scheme listed before it (``alias``)."""

    name: str
    family: str
    uses: frozenset[str]
    extra: str | None = None
    alias: bool = False


def _table(*rows: Scheme) -> dict[str, Scheme]:
    return {s.name: s for s in rows}


#: scheme -> :class:`Scheme`. ``file`` also stands for plain paths (FET-011).
SCHEMES: dict[str, Scheme] = _table(
    Scheme("file", "local", ALL),
    Scheme("http", "http", frozenset({"fetch", "virtual", "lazy"})),
    Scheme("https", "http", frozenset({"fetch", "virtual", "lazy"})),
    Scheme("s3", "s3", ALL, "s3"),
    Scheme("gs", "gs", frozenset({"fetch", "virtual", "lazy"}), "gs"),
    Scheme("gcs", "gs", frozenset({"fetch", "virtual", "lazy"}), "gs", alias=True),
    Scheme("az", "az", frozenset({"fetch", "virtual", "lazy"}), "az"),
    Scheme("abfs", "az", frozenset({"fetch", "virtual", "lazy"}), "az", alias=True),
    # obstore's name for Azure Blob Storage: read by chunk manifests only (CHK-007)
    Scheme("azure", "az", frozenset({"virtual"}), alias=True),
    # FET-015: rsync over SSH
    Scheme("ssh", "ssh", frozenset({"fetch"})),
    Scheme("rsync", "ssh", frozenset({"fetch"})),
    Scheme("sshfs", "ssh", frozenset({"fetch"})),
    # FET-014: git+<scheme>:// and paths ending in .git are git too (spec.keys.is_git_uri)
    Scheme("git", "git", frozenset({"fetch"})),
    Scheme("ssh+git", "git", frozenset({"fetch"}), alias=True),
    Scheme("git+ssh", "git", frozenset({"fetch"}), alias=True),
)

#: scheme -> hint naming what would add it (FET-001)
PLANNED = {"ftp": "ftp sources are not supported by this version"}


def accepted(use: str, *, aliases: bool = True) -> list[str]:
    """The schemes a capability (``fetch``, ``virtual``, ``append``, ``tree``, ``lazy``)
    accepts, in table order (without the other names of a scheme unless ``aliases``)."""
    return [name for name, s in SCHEMES.items() if use in s.uses and (aliases or not s.alias)]


def scheme_of(uri: str) -> str:
    """``"file"`` for plain paths (including Windows drive paths), else the URI scheme in
    lower case; ``""`` for a URI that cannot be parsed."""
    try:
        s = urlsplit(uri).scheme.lower()
    except ValueError:
        return ""
    return "file" if s in ("", "file") or (len(s) == 1 and uri[1:2] == ":") else s


def family_of(uri: str) -> str | None:
    """The family of ``uri``'s scheme, or None for a scheme outside :data:`SCHEMES`."""
    found = SCHEMES.get(scheme_of(uri))
    return found.family if found else None


def names_of(*families: str) -> frozenset[str]:
    """Every scheme name (aliases included) of the given families."""
    return frozenset(name for name, s in SCHEMES.items() if s.family in families)
