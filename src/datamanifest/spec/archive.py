"""Archive member validation as a pure function (SCHEMA.md FET-020).

Every member of an archive is judged before anything is extracted: absolute
names, ``..`` segments, links whose target resolves outside the extraction
folder, and special files make the whole archive unsafe.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

MEMBER_TYPES = ("file", "dir", "symlink", "hardlink", "device", "fifo")


@dataclass(frozen=True)
class Member:
    """An archive member: ``name``, ``type`` (one of MEMBER_TYPES) and ``linkname`` for links."""

    name: str
    type: str = "file"
    linkname: str = ""


class UnsafeMember(ValueError):
    """Why a member is refused (DM073); ``member`` names it."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"member {member!r} {reason}")
        self.member = member


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or (len(path) > 1 and path[1] == ":")


def safe_name(name: str) -> str:
    """The member's relative path with ``.`` segments removed; raises UnsafeMember."""
    norm = name.replace("\\", "/")
    if _is_absolute(norm):
        raise UnsafeMember(name, "has an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeMember(name, "would land outside the target")
    return "/".join(parts)


def check_member(m: Member) -> str:
    """Validate one member (FET-020); returns its safe relative path."""
    rel = safe_name(m.name)
    if m.type in ("symlink", "hardlink"):
        target = m.linkname.replace("\\", "/")
        if _is_absolute(target):
            raise UnsafeMember(m.name, f"links to the absolute path {m.linkname!r}")
        base = "" if m.type == "hardlink" else posixpath.dirname(rel)
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeMember(m.name, f"links outside the target ({m.linkname!r})")
    elif m.type not in ("file", "dir"):
        raise UnsafeMember(m.name, "is a device, FIFO or other special file")
    return rel


def check_members(members: list[Member]) -> None:
    """Validate every member; raises UnsafeMember for the first unsafe one."""
    for m in members:
        check_member(m)
