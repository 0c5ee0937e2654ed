"""Safe extraction of zip, tar and tar.gz archives (SCHEMA.md FET-020, FET-021).

Every member is validated before anything is written: absolute names,
``..`` segments, links that point outside the target, and device or FIFO
members are refused with :class:`~datamanifest.errors.UnsafeArchive` (DM073).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

from ..errors import FetchError, UnsafeArchive


def _check_name(name: str, archive: str) -> str:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeArchive(f"{archive}: member {name!r} has an absolute path",
                            hint="the archive is refused; nothing was extracted")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"{archive}: member {name!r} would land outside the target",
                            hint="the archive is refused; nothing was extracted")
    return "/".join(parts)


def _check_link(member: str, target: str, archive: str, *, hard: bool) -> None:
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise UnsafeArchive(f"{archive}: link {member!r} points to absolute path {target!r}",
                            hint="the archive is refused; nothing was extracted")
    base = "" if hard else posixpath.dirname(member)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchive(f"{archive}: link {member!r} points outside the target ({target!r})",
                            hint="the archive is refused; nothing was extracted")


def extract(archive: Path, fmt: str, dest: Path) -> None:
    """Extract ``archive`` (``fmt`` = zip, tar or tar.gz) into the empty folder ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name
    try:
        if fmt == "zip":
            _extract_zip(archive, dest, name)
        elif fmt in ("tar", "tar.gz", "tgz"):
            _extract_tar(archive, dest, name)
        else:
            raise FetchError(f"cannot extract format {fmt!r}", code="DM080")
    except (zipfile.BadZipFile, tarfile.ReadError, EOFError) as e:
        raise FetchError(f"{name} is not a readable {fmt} archive: {e}", code="DM080",
                         hint="check the format field and the source") from None


def _extract_zip(archive: Path, dest: Path, label: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        plan = []
        for info in infos:
            rel = _check_name(info.filename, label)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                _check_link(rel, zf.read(info).decode("utf-8"), label, hard=False)
            plan.append((info, rel, mode))
        for info, rel, mode in plan:
            if not rel:
                continue
            out = dest / rel
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                os.symlink(zf.read(info).decode("utf-8"), out)
                continue
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            if mode & 0o111:
                os.chmod(out, 0o755)


def _extract_tar(archive: Path, dest: Path, label: str) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        for m in members:
            rel = _check_name(m.name, label)
            if m.issym() or m.islnk():
                _check_link(rel, m.linkname, label, hard=m.islnk())
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchive(f"{label}: member {m.name!r} is a device, FIFO or other "
                                    "special file", hint="the archive is refused; nothing was extracted")
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:  # Python < 3.11.4: members were validated above
            tf.extractall(dest, members=members)
