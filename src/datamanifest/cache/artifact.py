"""Artifacts on disk: find a hit, verify it, publish, add a format, forget (SCHEMA.md §21).

The I/O edge over :mod:`datamanifest.spec.cache`. Every write follows PRD-024:
lock ``A.lock``, re-check, stage in ``A.tmp``, make durable, rename onto ``A``,
marker last, then one journal line in the state file (PRD-030, PRD-031).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .._version import __version__
from ..spec import cache
from ..spec.canonical import sort_document
from ..store.atomic import fsync_dir, sync_filesystem, write_bytes
from ..store.lock import Lock
from ..store.state import JOURNAL_FILE, legacy_paths, read_state, record_instances
from .context import Context
from ..formats import Format


@dataclass
class Artifact:
    """Where one produced dataset is, or would be published.

    ``identity``: its :class:`~datamanifest.spec.cache.Identity`; ``folder``: the
    folder of the hit, else the folder a miss publishes into (``A``, PRD-010);
    ``data_file``: the data entry of the requested format in ``folder``;
    ``source``: ``"store"`` (``A``), ``"recorded"`` (the state file's folder),
    ``"pool"``, or None when absent; ``formats``: the formats its marker lists
    (empty for a marker without digests, or when absent); ``parameters``: the key table
    when the caller knows it (else the display reads ``config.toml``).
    """

    identity: cache.Identity
    folder: Path
    data_file: Path
    source: str | None = None
    formats: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, Any] | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        from ..display import artifact_repr

        return artifact_repr(self)

    def _repr_html_(self) -> str:
        """Identity, state, parameters, formats and paths as HTML (SCHEMA.md INT-030)."""
        from ..display import artifact_html

        return artifact_html(self)

    @property
    def present(self) -> bool:
        """Whether a stored result was found (it has a ``source``)."""
        return self.source is not None

    @property
    def config(self) -> Path:
        """The artifact's ``config.toml`` (its key table, SC-001)."""
        return self.folder / cache.CONFIG

    @property
    def metadata(self) -> Path:
        """The artifact's ``metadata.toml`` (provenance, SC-010)."""
        return self.folder / cache.METADATA


# -- reading ---------------------------------------------------------------------------------------------
def _read_bytes(path: str) -> bytes | None:
    """The bytes of a file, None when it is absent or a folder: one read of its fstat size
    and one more only when the file grew meanwhile (a small file: four system calls)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    try:
        size = os.fstat(fd).st_size
        first = os.read(fd, size + 1)
        if len(first) <= size:
            return first
        chunks = [first]
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except IsADirectoryError:
        return None
    finally:
        os.close(fd)


def _read_signed(path: str) -> tuple[bytes | None, tuple[int, int, int, bool] | None]:
    """(bytes, signature as :func:`_sig`) of a file read once; (None, None) when absent."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None, None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return None, (st.st_ino, st.st_mtime_ns, st.st_size, True)
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size:  # it grew while read: read it whole, sign what was read
            chunks = [data]
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            data = b"".join(chunks)
            st = os.fstat(fd)
        return data, (st.st_ino, st.st_mtime_ns, st.st_size, False)
    finally:
        os.close(fd)


def _sig(path: str) -> tuple[int, int, int, bool] | None:
    """(inode, mtime ns, size, is a folder) of ``path``, or None when absent."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, stat.S_ISDIR(st.st_mode))


#: verdicts of PRD-020 by folder, identity and format, valid while the marker, config.toml
#: and data entry keep their inode, mtime and size: a repeated hit costs three stats,
#: and any rewrite of one of the files is read and checked again (SC-003)
_VERDICTS: dict[tuple, tuple[tuple, tuple[bool, str, cache.Marker | None]]] = {}
_VERDICTS_MAX = 4096


def check(folder: str, ident: cache.Identity, fmt: Format,
          basename: str) -> tuple[bool, str, cache.Marker | None]:
    """(hit, reason, the parsed marker or None when absent) for ``folder`` (PRD-020)."""
    name = cache.data_entry(fmt.name, basename)
    key = (folder, ident, fmt.name, basename)
    memo = _VERDICTS.get(key)
    if memo is not None:  # three stats say whether the verdict still holds
        msig = _sig(folder + "/" + cache.MARKER)
        if msig is None:
            return False, "no completion marker", None
        if memo[0] == (msig, _sig(folder + "/" + cache.CONFIG), _sig(folder + "/" + name)):
            return memo[1]
    # read (each file's signature from the descriptor read), then judge
    marker, msig = _read_signed(folder + "/" + cache.MARKER)
    if marker is None:
        return False, "no completion marker", None
    config, csig = _read_signed(folder + "/" + cache.CONFIG)
    esig = _sig(folder + "/" + name)
    sigs = (msig, csig, esig)
    result = cache.verdict(marker=marker.decode("utf-8", errors="replace"), config=config,
                          entry_exists=esig is not None and esig[3] == fmt.folder,
                          ident=ident, fmt=fmt.name, entry_name=name)
    if len(_VERDICTS) >= _VERDICTS_MAX:
        _VERDICTS.pop(next(iter(_VERDICTS)))
    _VERDICTS[key] = (sigs, result)
    return result


def digest_entry(path: Path, folder: bool, *, sync: bool = False) -> tuple[str, int]:
    """(``<algo>:<hex>``, size in bytes) of a data entry (PRD-011); with ``sync``, the
    entry is made durable first (fsync of a file, a file-system sync for a folder)."""
    from ..io.local import hash_file
    from ..tree import walk

    if folder:
        if sync:
            sync_filesystem(path)
        result = walk(path, "tree-sha256", exclude_root=())
        return result.checksum, result.total_size
    if sync:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    hexdigest, size = hash_file(os.fspath(path), "sha256")
    return f"sha256:{hexdigest}", size


def _verified_bytes(folder: str, fmt: Format, marker: cache.Marker) -> bytes | bool:
    """PRD-022: check the entry against the marker's digest; the verified bytes when the
    format loads from bytes (so what is loaded is what was checked), else True; False
    when it does not verify."""
    rec = (marker.formats or {}).get(fmt.name)
    if rec is None:
        return False
    entry = folder + "/" + rec["file"]
    if fmt.folder or fmt.loads is None:
        try:
            got = digest_entry(Path(entry), fmt.folder)
        except OSError:
            return False
        return got == (rec["checksum"], rec["size"])
    data = _read_bytes(entry)
    if data is None or len(data) != rec["size"] or \
            f"sha256:{hashlib.sha256(data).hexdigest()}" != rec["checksum"]:
        return False
    return data


class Found:
    """A verified hit: where it is, and the verified bytes when they were read (PRD-022).

    :attr:`artifact` is built on first use: a plain hit only needs the data file's path.
    """

    __slots__ = ("identity", "folder", "data_file", "source", "marker", "data", "_artifact")

    def __init__(self, identity: cache.Identity, folder: str, data_file: str, source: str,
                 marker: cache.Marker | None, data: bytes | None = None) -> None:
        self.identity, self.folder, self.data_file = identity, folder, data_file
        self.source, self.marker, self.data = source, marker, data
        self._artifact: Artifact | None = None

    @property
    def artifact(self) -> Artifact:
        if self._artifact is None:
            data_file = Path(self.data_file)
            self._artifact = Artifact(self.identity, data_file.parent, data_file, self.source,
                                      (self.marker.formats if self.marker else None) or {})
        return self._artifact


class _RecordedIndex:
    """The state file's ``[datacache]`` instances, re-read only when its files change.

    ``state.toml`` (and legacy index files) are parsed when their identity changes;
    the journal is read from where the last read stopped (PRD-031), so that a
    miss costs O(new journal lines), not O(state file).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._base_key: tuple | None = None
        self._datacache: dict[str, Any] = {}
        self._journal_id: tuple[int, int] | None = None
        self._journal_pos = 0

    @staticmethod
    def _id(path: Path) -> tuple:
        try:
            st = os.stat(path)
        except OSError:
            return ()
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def lookup(self, ctx: Context, ident: cache.Identity) -> str | None:
        state = ctx.state_file
        base_key = (str(state), str(ctx.datacache_dir), self._id(state),
                    *(self._id(p) for p in legacy_paths(state)))
        with self._lock:
            if base_key != self._base_key:
                try:
                    st = read_state(state, datacache_dir=str(ctx.datacache_dir))
                except Exception:  # unreadable: no recorded candidates (STA-006)
                    st = None
                dc = st.datacache if st is not None else {}
                self._datacache, self._base_key = dc, base_key
                self._journal_id, self._journal_pos = None, 0
                # read_state applied the journal as it was: continue after it
                jid = self._id(state.with_name(JOURNAL_FILE))
                if jid:
                    self._journal_id, self._journal_pos = (jid[0], 0), jid[2]
            self._tail(state.with_name(JOURNAL_FILE))
            rec = self._datacache.get(ident.record_key)
            path = rec.get("instances", {}).get(ident.hash) if isinstance(rec, dict) else None
        return cache.absolute_from_root(path, str(ctx.root)) if isinstance(path, str) and path \
            else None

    def _tail(self, journal: Path) -> None:
        try:
            f = open(journal, "rb")
        except FileNotFoundError:
            self._journal_id, self._journal_pos = None, 0
            return
        with f:
            st = os.fstat(f.fileno())
            if self._journal_id is None or self._journal_id[0] != st.st_ino \
                    or st.st_size < self._journal_pos:
                self._journal_pos = 0  # a new journal (after a fold): apply it whole
            self._journal_id = (st.st_ino, 0)
            if st.st_size == self._journal_pos:
                return
            f.seek(self._journal_pos)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a torn last line is read again next time
        cache.apply_journal(self._datacache, data[:end].decode("utf-8", errors="replace"))
        self._journal_pos += end


_RECORDED = _RecordedIndex()


def find(ctx: Context, ident: cache.Identity, fmt: Format, basename: str, *,
         datacache_dir: Path | None = None) -> Found | None:
    """The first hit among the candidates of PRD-021, verified per PRD-022; None on a miss."""
    store = os.fspath(datacache_dir or ctx.datacache_dir)
    a = store + "/" + ident.cache_key
    hit, _, marker = check(a, ident, fmt, basename)
    if hit:
        return _found(ident, a, fmt, basename, "store", marker)
    pools = [os.fspath(p) for p in ctx.pools]
    candidates: list[tuple[str, str]] = []
    recorded = _RECORDED.lookup(ctx, ident)
    if recorded is not None and recorded != a:
        candidates.append((recorded, "recorded"))
    candidates += [(pool + "/" + ident.cache_key, "pool") for pool in pools if pool != store]
    for folder, source in candidates:
        hit, _, marker = check(folder, ident, fmt, basename)
        if not hit or marker is None:
            continue
        if source == "recorded" and not any(folder.startswith(p + "/") for p in pools):
            return _found(ident, folder, fmt, basename, source, marker)
        verified = _verified_bytes(folder, fmt, marker)
        if verified is False:
            continue
        return _found(ident, folder, fmt, basename, source, marker,
                      verified if isinstance(verified, bytes) else None)
    return None


def _found(ident: cache.Identity, folder: str, fmt: Format, basename: str, source: str,
           marker: cache.Marker | None, data: bytes | None = None) -> Found:
    return Found(ident, folder, folder + "/" + cache.data_entry(fmt.name, basename), source,
                 marker, data)


def tidy_hit(ctx: Any, found: Found) -> None:
    """LCK-007 on a hit: the artifact's lock and the state lock, left by a producer killed
    after publishing, are reclaimed once stale. Two ``lstat`` calls when there is none."""
    from ..store.lock import reclaim_stale

    for lock in (found.folder + ".lock",
                 str(ctx.state_file.with_name(ctx.state_file.name + ".lock"))):
        if os.path.lexists(lock):
            reclaim_stale(Path(lock), ctx.stale_age)


def load(found: Found, fmt: Format) -> Any:
    """Load a hit's value: from the verified bytes when there are some, else from the data
    file (read whole in one call when the format loads from bytes)."""
    if fmt.loads is not None:
        data = found.data if found.data is not None else _read_bytes(found.data_file)
        if data is not None:
            return fmt.loads(data)
    return fmt.load(Path(found.data_file))


# -- writing ---------------------------------------------------------------------------------------------
def _durable(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def config_text(ident: cache.Identity, key_table: dict[str, Any]) -> str:
    """``config.toml``: the key table, then ``[_META]`` (SC-001, canonical form FMT-001)."""
    meta: dict[str, Any] = {"schema": 1, "cachetype": ident.cachetype, "hash": ident.hash}
    if ident.version:
        meta["version"] = ident.version
    return tomli_w.dumps(sort_document({**key_table, "_META": meta}, "config-sidecar"))


def _git(root: Path) -> dict[str, Any]:
    """commit and branch of the checkout at ``root``, read from ``.git`` (no subprocess)."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
    except (OSError, IndexError):
        return {}
    if not head.startswith("ref: "):
        return {"commit": head}
    ref = head[5:]
    out: dict[str, Any] = {"branch": ref.removeprefix("refs/heads/")}
    common = git
    try:
        common = (git / (git / "commondir").read_text().strip()).resolve()
    except OSError:
        pass
    for base in (git, common):
        try:
            out["commit"] = (base / ref).read_text().strip()
            return out
        except OSError:
            pass
        try:
            for line in (base / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    out["commit"] = line.split(" ", 1)[0]
                    return out
        except OSError:
            pass
    return out


def metadata_text(ctx: Context) -> str:
    """``metadata.toml``: provenance only (SC-010)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "")
    meta = {"schema": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tool": f"datamanifest {__version__}", "host": socket.gethostname(), "user": user}
    doc: dict[str, Any] = {"_META": meta}
    git = _git(ctx.root)
    if git:
        doc["git"] = git
    doc["origin"] = {"state_file": str(ctx.state_file)}
    return tomli_w.dumps(doc)


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _record(ctx: Context, ident: cache.Identity, folder: Path | None, ref: str, fmt: str) -> None:
    path = None if folder is None else cache.relative_to_root(str(folder), str(ctx.root))
    record_instances(ctx.state_file, [(ident.record_key, ident.hash, path, ref, fmt)],
                     stale_age=ctx.stale_age, datacache_dir=str(ctx.datacache_dir))


@dataclass
class Produced:
    """The outcome of :func:`produce`: the value, the artifact, and what happened.

    ``computed`` is True when this call ran the function; ``waited`` when it waited
    for another process's lock.
    """

    value: Any
    artifact: Artifact
    computed: bool
    waited: bool = False
    converted_from: str | None = None  # PRD-026: the stored format the value was loaded from


def produce(ctx: Context, ident: cache.Identity, key_table: dict[str, Any], fmt: Format,
            basename: str, compute: Callable[[], Any], *, ref: str, recompute: bool = False,
            datacache_dir: Path | None = None, lock_timeout: float | None = None) -> Produced:
    """Publish the artifact of ``ident`` after computing it, unless another process did
    meanwhile (PRD-024..PRD-026). With ``recompute``, an existing artifact is replaced.

    The function's own exceptions propagate unchanged, leaving nothing (PRD-025).
    Raises :class:`~datamanifest.errors.LockTimeout` (DM075) after ``lock_timeout``
    seconds of waiting (None: wait while the holder is alive).
    """
    fmt.check_available()
    store = datacache_dir or ctx.datacache_dir
    a = store / ident.cache_key
    a.parent.mkdir(parents=True, exist_ok=True)
    lock = Lock(a.with_name(a.name + ".lock"), stale_age=ctx.stale_age, timeout=lock_timeout)
    with lock:
        hit, _, marker = check(os.fspath(a), ident, fmt, basename)
        if hit and not recompute:  # LCK-003: another process published it meanwhile
            found = _found(ident, os.fspath(a), fmt, basename, "store", marker)
            return Produced(load(found, fmt), found.artifact, computed=False,
                            waited=lock.waited)
        config = _read_bytes(os.fspath(a / cache.CONFIG))
        if not hit and not recompute and marker is not None and \
                cache.config_bytes_match(config, ident):
            return _add_format(ctx, ident, a, fmt, basename, compute, marker, config or b"",
                               ref, lock.waited)
        staging = a.with_name(a.name + ".tmp")
        _remove_tree(staging)
        staging.mkdir()
        try:
            value = compute()
            entry = staging / cache.data_entry(fmt.name, basename)
            fmt.save(value, entry)
            checksum, size = digest_entry(entry, fmt.folder, sync=True)
            config = config_text(ident, key_table).encode("utf-8")
            _durable(staging / cache.CONFIG, config)
            _durable(staging / cache.METADATA, metadata_text(ctx).encode("utf-8"))
            fsync_dir(staging)
        except BaseException:
            _remove_tree(staging)  # PRD-025: nothing left, the error propagates unchanged
            raise
        if os.path.lexists(a):  # not a hit (or replaced on purpose): marker first, then bytes
            (a / cache.MARKER).unlink(missing_ok=True)
            old = a.with_name(a.name + ".old")
            _remove_tree(old)  # left by a producer killed while replacing
            os.replace(a, old)
            os.replace(staging, a)
            _remove_tree(old)
        else:
            os.replace(staging, a)
        fsync_dir(a.parent)
        listed = {fmt.name: {"file": entry.name, "checksum": checksum, "size": size}}
        text = cache.render_marker(listed, cache.config_digest(config))
        write_bytes(a / cache.MARKER, text.encode("utf-8"))
        _record(ctx, ident, a, ref, fmt.name)
        art = Artifact(ident, a, a / entry.name, "store", listed)
        return Produced(value, art, computed=True, waited=lock.waited)


def _add_format(ctx: Context, ident: cache.Identity, a: Path, fmt: Format, basename: str,
                compute: Callable[[], Any], marker: cache.Marker, config: bytes, ref: str,
                waited: bool) -> Produced:
    """PRD-026: a new data entry renamed into a complete artifact, then a new marker. The
    value is the stored result converted (loaded from a listed format this process can
    load); the function runs only when none can be loaded."""
    name = cache.data_entry(fmt.name, basename)
    listed = dict(marker.formats) if marker.formats is not None else None
    if listed is None:  # an empty (ecosystem) marker: list what is there now
        listed = {}
        for p in a.iterdir():
            if p.name.startswith(basename + ".") and p.name not in (cache.CONFIG, cache.METADATA):
                fname = p.name[len(basename) + 1:]
                try:
                    checksum, size = digest_entry(p, p.is_dir())
                except OSError:
                    continue
                listed[fname] = {"file": p.name, "checksum": checksum, "size": size}
    tmp = a / f".{name}.{os.getpid()}.tmp"
    _remove_tree(tmp)
    source, value = _stored_value(a, listed, fmt)
    try:
        if source is None:
            value = compute()
        fmt.save(value, tmp)
        checksum, size = digest_entry(tmp, fmt.folder, sync=True)
    except BaseException:
        _remove_tree(tmp)
        raise
    final = a / name
    if os.path.lexists(final):
        _remove_tree(final)
    os.replace(tmp, final)
    fsync_dir(a)
    listed[fmt.name] = {"file": name, "checksum": checksum, "size": size}
    text = cache.render_marker(listed, cache.config_digest(config))
    write_bytes(a / cache.MARKER, text.encode("utf-8"))
    _record(ctx, ident, a, ref, fmt.name)
    return Produced(value, Artifact(ident, a, final, "store", listed), computed=source is None,
                    waited=waited, converted_from=source)


def _stored_value(a: Path, listed: dict[str, Any], fmt: Format) -> tuple[str | None, Any]:
    """(format, value) of the first listed format of artifact ``a`` that loads here and is
    not ``fmt``, checked against its recorded digest; (None, None) when none does (PRD-026)."""
    from ..formats import producible

    for name, entry in listed.items():
        other = producible(name)
        path = a / str(entry.get("file", ""))
        if other is None or name == fmt.name or not os.path.lexists(path):
            continue
        try:
            other.check_available()
            if entry.get("checksum") and digest_entry(path, other.folder)[0] != entry["checksum"]:
                continue  # modified since it was published: not a source to convert from
            return name, other.load(path)
        except Exception:  # noqa: BLE001 - a library missing, bytes it cannot read: next one
            continue
    return None, None


def forget(ctx: Context, ident: cache.Identity, *, datacache_dir: Path | None = None) -> bool:
    """Delete the artifact of ``ident`` from the store and its state record (PRD-027).

    Pools are never touched (PRD-023). Returns whether a folder was removed.
    """
    store = datacache_dir or ctx.datacache_dir
    a = store / ident.cache_key
    removed = False
    with Lock(a.with_name(a.name + ".lock"), stale_age=ctx.stale_age):
        if os.path.lexists(a):
            (a / cache.MARKER).unlink(missing_ok=True)
            old = a.with_name(a.name + ".old")
            _remove_tree(old)
            os.replace(a, old)
            _remove_tree(old)
            removed = True
        _remove_tree(a.with_name(a.name + ".tmp"))
        if removed or _RECORDED.lookup(ctx, ident) is not None:
            _record(ctx, ident, None, "", "")
    return removed
