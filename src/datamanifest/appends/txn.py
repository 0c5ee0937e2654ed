"""The append transaction and its recovery (SCHEMA.md §26.3, APP-020..APP-025).

One :class:`Appender` serves one target and configuration and appends slices one
transaction each, in the order of APP-022:

1. take the lock (APP-020) and recover a pending transaction (APP-024);
2. read the committed view (APP-010) and check the slice against it (APP-012);
3. write the journal (APP-021), 4. the backups, 5. the new chunks;
6. make them durable; 7. **commit**: replace the root metadata atomically;
8. rewrite per-array metadata; 9. record the version (APP-030);
10. delete the journal and the transaction folder, release the lock.

A reader opening the target through its consolidated metadata sees the cube before step 7
or after it. A writer killed anywhere leaves a journal (or nothing) that the next start
rolls back or forward by itself, deciding by the digest of the root (APP-024).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AppendError
from ..interrupt import shielded
from ..spec import appends
from . import prepare, versions
from .targets import HeldLock, LocalTarget, AppendTarget


@dataclass
class Result:
    """One append: ``action`` (``created``, ``appended``, ``dry-run``), lengths along the
    dimension before and after, the transaction id, the version's tree checksum, what
    recovery did first (if anything), keys and bytes written, seconds taken."""

    target: str
    action: str
    old_length: int
    new_length: int
    txn: str | None = None
    version: str | None = None
    recovered: dict[str, Any] | None = None
    keys_written: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    waited: bool = False
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step of APP-022

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _name_of(slice_obj: Any) -> str:
    import os

    if isinstance(slice_obj, (str, os.PathLike)):
        return os.fspath(slice_obj)
    return f"<{type(slice_obj).__name__}>"


def _journal_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1) + "\n").encode()


def parse_journal(data: bytes, where: str) -> dict[str, Any]:
    """The journal document; DM166 when it cannot be read (it is written atomically, so a
    torn journal means something else wrote it)."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or "txn" not in doc:
            raise ValueError("not a journal")
        return doc
    except ValueError as e:
        raise AppendError(f"the journal {where} cannot be read ({e}); nothing was touched",
                          code="DM166", hint="inspect it; delete it only if you know the "
                          "target is as it should be") from e


class Appender:
    """Appends slices to ``target`` under ``cfg``. ``on_wait(holder)`` is called when the
    lock is busy; ``on_recover(action)`` when a pending transaction was repaired."""

    def __init__(self, target: AppendTarget, cfg: appends.AppendConfig, *,
                 on_wait: Callable[[str], None] | None = None,
                 on_recover: Callable[[dict[str, Any]], None] | None = None,
                 record_versions: bool = True) -> None:
        self.target, self.cfg = target, cfg
        self.on_wait, self.on_recover = on_wait, on_recover
        self.record_versions = record_versions
        self.root = appends.root_key(cfg.zarr_format)
        self._model: tuple[bytes, prepare.TargetModel] | None = None
        self._checked = False

    # -- the target (APP-015) ---------------------------------------------------------------------
    def check_target(self) -> None:
        """APP-015: refuse, before anything is written beside it (no lock, no journal), a
        target that is neither a Zarr store, nor an empty folder, nor absent: a regular
        file, or a folder holding other files. Raises :class:`AppendError` DM171."""
        if self._checked:
            return
        kind, names = self.target.listing()
        pending = kind == "folder" and not any(n in appends.ZARR_MARKERS for n in names) \
            and names and self.target.read_journal() is not None
        try:
            appends.classify_target(kind, names, bool(pending))
        except appends.AppendSpecError as e:
            raise AppendError(f"the target {e.message}", code=e.code, file=self.target.url,
                              hint="append to a new path, or to a Zarr store (a folder with "
                              f"{', '.join(appends.ZARR_MARKERS)} at its top)") from e
        self._checked = True

    # -- the lock -------------------------------------------------------------------------------
    def _lock(self) -> HeldLock:
        o = self.cfg.lock
        waited = []

        def told(who: str) -> None:
            waited.append(who)
            if self.on_wait:
                self.on_wait(who)

        held = self.target.lock(wait=o.wait, timeout=o.timeout, stale_age=float(o.stale_age),
                                poll=float(o.poll), on_wait=told)
        held.waited = bool(waited)  # type: ignore[attr-defined]
        return held

    # -- reading the committed view (APP-010) ------------------------------------------------------
    def _find_root(self) -> tuple[str, bytes | None]:
        """The root key and bytes; an existing target's own format wins over the config."""
        for key in (self.root, appends.root_key(5 - self.cfg.zarr_format)):
            data = self.target.read(key)
            if data is not None:
                return key, data
        return self.root, None

    def _view(self, key: str, data: bytes) -> appends.CommittedView:
        try:
            doc = json.loads(data)
            return appends.view_from_root(doc, 3 if key == appends.V3_ROOT else 2)
        except ValueError as e:
            raise AppendError(f"{self.target.url}/{key} is not JSON: {e}", code="DM167") from e
        except appends.AppendSpecError as e:
            raise AppendError(f"{self.target.url}: {e.message}", code=e.code,
                              hint="appends need a consolidated Zarr group (zarr.json with "
                              "consolidated_metadata, or .zmetadata)") from e

    def _target_model(self, root: bytes, view: appends.CommittedView) -> prepare.TargetModel:
        if self._model is not None and self._model[0] == root:
            return self._model[1]
        model = prepare.TargetModel(view, self.cfg)
        self._model = (root, model)
        return model

    # -- recovery (APP-024) -------------------------------------------------------------------------
    def recover(self) -> dict[str, Any] | None:
        """Take the lock and repair a pending transaction; returns what was done or None.
        Raises AppendError DM171 for a target that is not ours (APP-015)."""
        self.check_target()
        with self._lock():
            return self._recover()

    def _recover(self, took_over: bool = True, forward: bool = True) -> dict[str, Any] | None:
        """Repair what the journal (if any) says (APP-024). ``forward=False``: only roll back
        (an interrupted append before its commit point, LCK-008); a transaction past its
        commit point is left for the next start to roll forward."""
        t = self.target
        raw = t.read_journal()
        if raw is None:
            if not took_over:
                return None
            n = t.clear_txns()  # a writer died before its journal: its temporary files
            return {"action": "cleaned", "files": n} if n else None
        journal = parse_journal(raw, f"beside {t.url}")
        txn = journal["txn"]
        root_key = journal.get("root") or self.root
        root = t.read(root_key)
        creates = list(journal.get("creates") or [])
        present = {k for k in creates if t.exists(k)}
        backups = {r["backup"] for r in journal.get("replaces") or []
                   if t.read_backup(txn, r["key"]) is not None}
        try:
            plan = appends.recovery(journal, appends.digest(root), present, backups)
        except appends.AppendSpecError as e:
            raise AppendError(f"{t.url}: {e.message}", code=e.code,
                              hint=f"the journal of transaction {txn} is kept beside the "
                              "target; compare the target with it by hand") from e
        if plan.action != "roll-back" and not forward:
            return None
        if plan.action == "roll-back":
            t.delete(plan.delete)
            for key, _backup in plan.restore:
                data = t.read_backup(txn, key)
                if data is not None:
                    t.write(txn, key, data)
            if root is not None and plan.rewrite:
                docs = appends.metadata_documents(self._view(root_key, root))
                for key in plan.rewrite:
                    if key in docs:
                        t.write(txn, key, docs[key])
            elif root is None:  # a new target that never committed: no metadata may remain
                t.delete([k for k in journal.get("metadata") or [] if t.exists(k)])
        else:
            docs = appends.metadata_documents(self._view(root_key, root))
            for key in plan.rewrite:
                if key in docs:
                    t.write(txn, key, docs[key])
            if self.record_versions:
                versions.record_full(t, keep=self.cfg.keep_versions)
        t.delete_journal()
        t.clear_txns()
        out = {"txn": txn, **plan.as_json()}
        if self.on_recover:
            self.on_recover(out)
        return out

    # -- one append --------------------------------------------------------------------------------
    def append(self, slice_obj: Any) -> Result:
        """Append one slice (APP-022). Raises :class:`AppendError` (DM160..DM167) with the
        target untouched when the slice does not fit, LockTimeout (DM131 without waiting,
        DM075 after ``lock.timeout``) when another writer holds the lock."""
        start = time.perf_counter()
        try:
            return self._append_one(slice_obj, start)
        except AppendError as e:
            if e.file is None:  # name the slice that did not fit
                e.file = _name_of(slice_obj)
                e.args = (e.render(),)
            raise

    def _append_one(self, slice_obj: Any, start: float) -> Result:
        self.check_target()  # APP-015: before the slice is even opened
        ds = prepare.select(prepare.open_slice(slice_obj), self.cfg)
        if self.cfg.dry_run:
            return self._dry_run(ds, start)
        with self._lock() as held:
            recovered = self._recover(held.took_over is not None)
            key, root = self._find_root()
            try:
                if root is None:
                    res = self._create(ds, held)
                else:
                    res = self._append(ds, key, root, held)
            except KeyboardInterrupt:
                # LCK-008: an interrupted append rolls back now, under its lock (quick: the
                # created keys go, the backups come back); one past its commit point keeps
                # its journal, rolled forward by the next start (APP-024)
                with shielded():
                    try:
                        self._recover(True, forward=False)
                    except (AppendError, OSError):
                        pass  # the journal stays: the next start repairs the target
                raise
        res.recovered = recovered
        res.waited = getattr(held, "waited", False)
        res.seconds = time.perf_counter() - start
        return res

    def _dry_run(self, ds, start: float) -> Result:
        """Check only: no lock, no byte written."""
        key, root = self._find_root()
        if root is None:
            prepare.create_store(ds, self.cfg)
            n = int(ds.sizes.get(self.cfg.append_dim, 0))
            return Result(self.target.url, "dry-run", 0, n, seconds=time.perf_counter() - start)
        view = self._view(key, root)
        model = self._target_model(root, view)
        p = model.prepare(ds, self.target.read)
        old = view.length(self.cfg.append_dim) or 0
        return Result(self.target.url, "dry-run", old, old + p.count,
                      seconds=time.perf_counter() - start)

    def _journal(self, held: HeldLock, txn: str, root_key: str, committed: bytes | None,
                 old: int, new_root: bytes, new: int, creates: list[str],
                 replaces: list[str], metadata: list[str], tree: str | None) -> dict[str, Any]:
        doc = self._journal_doc(held, txn, root_key, committed, old, new_root, new, creates,
                                replaces, metadata, tree)
        self.target.write_journal(txn, _journal_bytes(doc))
        return doc

    def _journal_doc(self, held: HeldLock, txn: str, root_key: str, committed: bytes | None,
                     old: int, new_root: bytes, new: int, creates: list[str],
                     replaces: list[str], metadata: list[str],
                     tree: str | None) -> dict[str, Any]:
        """The journal document of APP-021."""
        return {
            "schema": 1, "txn": txn, "target": self.target.url, "owner": held.owner,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "append_dim": self.cfg.append_dim, "root": root_key,
            "committed": None if committed is None else {
                "digest": appends.digest(committed), "length": old, "tree": tree},
            "new": {"digest": appends.digest(new_root), "length": new},
            "creates": creates,
            "replaces": [{"key": k, "backup": self.target.backup_key(txn, k)} for k in replaces],
            "metadata": metadata,
        }

    def _commit(self, held: HeldLock, txn: str, root_key: str, data: bytes,
                expected: Any) -> None:
        if not held.still_held():
            raise AppendError(f"the lock of {self.target.url} was taken over during this "
                              "append (its heartbeat stopped?); nothing was committed",
                              code="DM166", hint="the next append recovers the target")
        self.target.commit(txn, root_key, data, expected)

    def _create(self, ds, held: HeldLock) -> Result:
        """APP-023: the first slice creates the target; the commit point is the root's
        appearance."""
        t, dim = self.target, self.cfg.append_dim
        if dim not in ds.dims:
            raise AppendError(f"the slice has no dimension {dim!r}", code="DM162",
                              hint="set append_dim (--dim)")
        keys = prepare.create_store(ds, self.cfg)
        root_key = appends.root_key(self.cfg.zarr_format)
        root = keys.pop(root_key)
        metadata = sorted(k for k in keys if appends.is_metadata_key(k, self.cfg.zarr_format))
        chunks = sorted(k for k in keys if k not in metadata)
        view = self._view(root_key, root)
        n = view.length(dim) or 0
        txn = secrets.token_hex(8)
        self._journal(held, txn, root_key, None, 0, root, n, chunks + metadata, [], metadata,
                      None)
        for k in chunks:
            t.write(txn, k, keys[k])
        t.flush()
        self._commit(held, txn, root_key, root, t.root_tag(root_key))
        for k in metadata:
            t.write(txn, k, keys[k])
        version = None
        if self.record_versions:
            version = versions.record(t, {**keys, root_key: root}, [], None,
                                      keep=self.cfg.keep_versions)
        t.delete_journal()
        t.end_txn(txn)
        self._model = None
        return Result(t.url, "created", 0, n, txn, version,
                      keys_written=len(keys) + 1,
                      bytes_written=sum(map(len, keys.values())) + len(root))

    def _append(self, ds, root_key: str, root: bytes, held: HeldLock) -> Result:
        t, dim = self.target, self.cfg.append_dim
        clock = time.perf_counter
        t0 = clock()
        expected = root if isinstance(t, LocalTarget) else t.root_tag(root_key)
        view = self._view(root_key, root)
        model = self._target_model(root, view)
        p = model.prepare(ds, t.read)  # APP-012: every check before a byte is written
        old = view.length(dim) or 0
        plan = appends.plan(view, dim, p.count)
        new_view = appends.with_length(view, dim, plan.new_length)
        attrs = self._attrs(view.attrs, p.attrs)
        if attrs != view.attrs:
            if new_view.zarr_format == 3:
                new_view.root["attributes"] = attrs
            else:
                new_view.root["metadata"][".zattrs"] = attrs
            new_view.attrs = attrs
        new_root = appends.root_bytes(new_view)
        docs: dict[str, bytes] = {}  # per-array metadata that changes (APP-022 step 8)
        for name in plan.writes:
            doc = appends.array_document(new_view.arrays[name])
            docs.update({k: v for k, v in doc.items() if not k.endswith(".zattrs")})
        if attrs != view.attrs and new_view.zarr_format == 2:
            docs[".zattrs"] = appends.metadata_documents(new_view)[".zattrs"]
        metadata = sorted(docs)
        # chunks: which replaces really hold committed bytes (a missing chunk is all fill)
        existing: dict[str, bytes] = {}
        for k in plan.replaces:
            data = t.read(k)
            if data is not None:
                existing[k] = data
        replaces = sorted(existing)
        creates = sorted(set(plan.creates) | (set(plan.replaces) - set(existing)))
        tj = clock()
        tree = versions.current(t) if self.record_versions else None
        txn = secrets.token_hex(8)
        # APP-021: the journal is written (and made durable, by the target's syncing thread)
        # while the chunks are encoded, which mutates nothing; no byte is written into or
        # beside the target before it is durable (journal_durable() below)
        journal_durable = t.start_journal(txn, _journal_bytes(self._journal_doc(
            held, txn, root_key, root, old, new_root, plan.new_length, creates, replaces,
            metadata, tree)))
        t1 = clock()
        written: dict[str, bytes] = {}
        try:
            for name, indices in plan.writes.items():
                a = view.arrays[name]
                codec = model.codecs[name]
                for index in indices:
                    k = appends.chunk_key(a, index)
                    written[k] = prepare.chunk_bytes(a, codec, p.arrays[name], dim, old, index,
                                                     existing.get(k))
        except BaseException:  # nothing was mutated: the journal goes again
            with shielded():
                journal_durable()
                t.delete_journal()
            raise
        t2 = clock()
        journal_durable()
        t3 = clock()
        for k in replaces:  # APP-021: a backup is durable before the key it keeps is replaced
            t.write_backup(txn, k, existing[k])
        for k, data in written.items():
            t.write(txn, k, data)
        t4 = clock()
        t.flush()
        t5 = clock()
        self._commit(held, txn, root_key, new_root, expected)
        t6 = clock()
        try:  # steps 8 and 9 while the target makes the commit point durable
            for k in metadata:
                t.write(txn, k, docs[k])
                written[k] = docs[k]
            written[root_key] = new_root
            t7 = clock()
            version = None
            if self.record_versions:  # without a recorded previous version: walk it once
                version = versions.record(t, written, [], tree, keep=self.cfg.keep_versions,
                                          committed_root=(root_key, root)) \
                    if tree is not None else versions.record_full(t,
                                                                  keep=self.cfg.keep_versions)
            t8 = clock()
        finally:
            with shielded():
                t.settle()  # step 10 only once the commit point is durable
        t.delete_journal()
        if replaces:
            t.end_txn(txn)
        t9 = clock()
        self._model = (new_root, model)
        model.view = new_view
        if p.labels:
            model.known_last = (plan.new_length, p.labels[-1])
        return Result(t.url, "appended", old, plan.new_length, txn, version,
                      keys_written=len(written), bytes_written=sum(map(len, written.values())),
                      phases={"check": tj - t0, "encode": t2 - t1,
                              "journal": (t1 - tj) + (t3 - t2),
                              "chunks": t4 - t3, "flush": t5 - t4, "commit": t6 - t5,
                              "metadata": t7 - t6, "version": t8 - t7, "cleanup": t9 - t8})

    def _attrs(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        mode = self.cfg.attrs_update_mode
        if mode == "replace":
            out = dict(new)
        elif mode == "update":
            out = {**old, **new}
        else:  # keep, ignore
            out = dict(old)
        out.update(self.cfg.attrs)
        return out


@dataclass
class Status:
    """APP-010/APP-020/APP-021 at a glance: the committed length, the pending transaction
    (its journal) and the lock holder."""

    target: str
    exists: bool
    zarr_format: int | None = None
    length: int | None = None
    append_dim: str | None = None
    variables: list[str] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    lock: dict[str, Any] | None = None
    version: str | None = None
    #: the committed steps, oldest first: one recorded version each (``checksum``, ``time``,
    #: ``entries``, ``kept``; APP-030)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        from ..display import append_status_repr

        return append_status_repr(self)

    def _repr_html_(self) -> str:
        """Length, steps, last version, pending transaction and lock as HTML (INT-030)."""
        from ..display import append_status_html

        return append_status_html(self)


def status(target: AppendTarget, cfg: appends.AppendConfig) -> Status:
    """Read-only: what the committed view, the journal and the lock say."""
    a = Appender(target, cfg, record_versions=False)
    a.check_target()
    key, root = a._find_root()
    st = Status(target.url, root is not None, append_dim=cfg.append_dim)
    if root is not None:
        view = a._view(key, root)
        st.zarr_format = view.zarr_format
        st.length = view.length(cfg.append_dim)
        st.variables = sorted(view.arrays)
    raw = target.read_journal()
    if raw is not None:
        j = parse_journal(raw, f"beside {target.url}")
        st.pending = {"txn": j.get("txn"), "created": j.get("created"),
                      "committed_length": (j.get("committed") or {}).get("length"),
                      "new_length": (j.get("new") or {}).get("length"),
                      "creates": len(j.get("creates") or []),
                      "replaces": len(j.get("replaces") or [])}
    info = target.lock_info()
    if info is not None:
        st.lock = {**info.doc, "heartbeat_age": round(info.age, 3),
                   "stale": info.stale(float(cfg.lock.stale_age))}
    st.version = versions.current(target)
    st.steps = versions.history(target)
    return st
