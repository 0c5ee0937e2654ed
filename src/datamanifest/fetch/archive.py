"""Safe extraction of zip, tar and tar.gz archives (SCHEMA.md FET-020, FET-021).

Every member is validated with :mod:`datamanifest.spec.archive` before
anything is written; an unsafe one raises
:class:`~datamanifest.errors.UnsafeArchive` (DM073).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

from ..errors import FetchError, UnsafeArchive
from ..spec.archive import Member, UnsafeMember, check_member


def _check(m: Member, archive: str) -> str:
    try:
        return check_member(m)
    except UnsafeMember as e:
        raise UnsafeArchive(f"{archive}: {e}", hint="the archive is refused; nothing was extracted") \
            from None


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
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                member = Member(info.filename, "symlink", zf.read(info).decode("utf-8"))
            else:
                member = Member(info.filename, "dir" if info.is_dir() else "file")
            plan.append((info, _check(member, label), mode))
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
            kind = ("symlink" if m.issym() else "hardlink" if m.islnk() else "file" if m.isfile()
                    else "dir" if m.isdir() else "device")
            _check(Member(m.name, kind, m.linkname), label)
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:  # Python < 3.11.4: members were validated above
            tf.extractall(dest, members=members)
