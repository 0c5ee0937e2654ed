"""Safe extraction of zip, tar and tar.gz archives (SCHEMA.md FET-020, FET-021, FET-022).

Every member is validated with :mod:`datamanifest.spec.archive` before
anything is written; an unsafe one raises
:class:`~datamanifest.errors.UnsafeArchive` (DM073). The members' declared sizes are
summed first and the bytes counted while they are written: more than ``max_bytes`` is
DM095 (a decompression bomb) with nothing published. Each path is also checked where it
lands -- through the links extracted so far -- so a chain of links that are each inside
the folder cannot lead a later member outside it.
"""

from __future__ import annotations

import os
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
            from e


DEFAULT_MAX_BYTES = 256 * 2**30


def _too_big(label: str, size: int, max_bytes: int) -> FetchError:
    return FetchError(f"{label} extracts to more than {max_bytes} bytes (at least {size})",
                      code="DM095",
                      hint="nothing was published; if the archive is genuine, raise "
                           "max_extract_bytes ([_STORAGE] or DATAMANIFEST_MAX_EXTRACT_BYTES)")


def extract(archive: Path, fmt: str, dest: Path, *, max_bytes: int | None = None) -> None:
    """Extract ``archive`` (``fmt`` = zip, tar or tar.gz) into the empty folder ``dest``.

    Raises UnsafeArchive (DM073) for an unsafe member, FetchError DM095 when the members
    total more than ``max_bytes`` bytes (default 256 GiB), DM080 for an unreadable
    archive. The caller removes ``dest`` on error (nothing is published)."""
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name
    limit = max_bytes or DEFAULT_MAX_BYTES
    try:
        if fmt == "zip":
            _extract_zip(archive, dest, name, limit)
        elif fmt in ("tar", "tar.gz", "tgz"):
            _extract_tar(archive, dest, name, limit)
        else:
            raise FetchError(f"cannot extract format {fmt!r}", code="DM080")
    except getattr(tarfile, "FilterError", ()) as e:  # the data filter's own refusal
        raise UnsafeArchive(f"{name}: {e}", hint="the archive is refused; nothing was "
                            "published") from e
    except (zipfile.BadZipFile, tarfile.ReadError, EOFError) as e:
        raise FetchError(f"{name} is not a readable {fmt} archive: {e}", code="DM080",
                         hint="check the format field and the source") from e


def _inside(root: str, path: str, label: str, member: str) -> None:
    """``path`` (resolved through the links on disk) is ``root`` or below it (FET-020)."""
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        raise UnsafeArchive(f"{label}: member {member!r} would land outside the target "
                            "through a link", hint="the archive is refused; nothing was published")


def _extract_zip(archive: Path, dest: Path, label: str, limit: int) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        plan = []
        declared = 0
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                member = Member(info.filename, "symlink", zf.read(info).decode("utf-8"))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) \
                    or stat.S_ISSOCK(mode):
                member = Member(info.filename, "device")
            else:
                member = Member(info.filename, "dir" if info.is_dir() else "file")
            plan.append((info, _check(member, label), mode))
            declared += info.file_size
        if declared > limit:
            raise _too_big(label, declared, limit)
        root = os.path.realpath(dest)
        written = 0
        for info, rel, mode in plan:
            if not rel:
                continue
            out = dest / rel
            _inside(root, str(out.parent), label, info.filename)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                _inside(root, str(out), label, info.filename)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(out):  # a later member never writes through an earlier link
                raise UnsafeArchive(f"{label}: member {info.filename!r} appears twice",
                                    hint="the archive is refused; nothing was published")
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode("utf-8")
                _inside(root, os.path.join(out.parent, link), label, info.filename)
                os.symlink(link, out)
                continue
            with zf.open(info) as src, open(out, "xb") as dst:
                while block := src.read(1024 * 1024):
                    written += len(block)
                    if written > limit:  # a header that lied about the size
                        raise _too_big(label, written, limit)
                    dst.write(block)
            if mode & 0o111:
                os.chmod(out, 0o755)


def _extract_tar(archive: Path, dest: Path, label: str, limit: int) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        declared = 0
        for m in members:
            kind = ("symlink" if m.issym() else "hardlink" if m.islnk() else "file" if m.isfile()
                    else "dir" if m.isdir() else "fifo" if m.isfifo() else "device")
            _check(Member(m.name, kind, m.linkname), label)
            declared += m.size if m.isfile() else 0
        if declared > limit:  # tar headers state the true sizes of what follows
            raise _too_big(label, declared, limit)
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:  # Python < 3.11.4: members were validated above
            tf.extractall(dest, members=members)
