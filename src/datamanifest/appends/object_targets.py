"""Appends to object stores: an ``s3://bucket/prefix`` target (SCHEMA.md §26.3, APP-020..APP-022).

The layout follows the prefix as a local target's follows its folder: ``<prefix>.lock``,
``<prefix>.journal.json``, ``<prefix>.txn/<txn>/``. The commit point is a conditional PUT of the
root metadata and the lock a conditional create, so two writers never both commit; the client
is the one :mod:`datamanifest.io.objects` builds for conditional writes (boto3, see
``design/2026-12-03-package-map.md``). Importing this module registers the ``s3`` scheme with
:func:`datamanifest.appends.targets.open_target`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .. import faults
from ..errors import AppendError
from ..io.objects import error_code, s3_client, s3_config, s3_errors
from .locks import HeldLock, LockInfo, _wait_loop, lock_bytes, parse_lock
from .targets import JOURNAL, LOCK, TXN, AppendTarget, register


class S3Target(AppendTarget):
    """A Zarr store under ``s3://bucket/prefix``: one PUT per key; the commit point is a
    conditional PUT of the root (``If-Match`` its ETag, ``If-None-Match: *`` when new); the
    lock a conditional create; a stale lock is replaced with ``If-Match`` its ETag."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        rest = url[len("s3://"):]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise AppendError(f"{url} names no bucket", code="DM160",
                              hint="an S3 target is s3://bucket/prefix")
        self.prefix = prefix.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}"
        opts = dict(options or {})
        kwargs = {k: opts.pop(k) for k in ("endpoint_url", "region_name", "aws_access_key_id",
                                           "aws_secret_access_key") if k in opts}
        if "region" in opts:
            kwargs["region_name"] = opts.pop("region")
        self.client = s3_client("appending to s3://", config=s3_config(
            retries={"max_attempts": 3}, max_pool_connections=16), **kwargs)
        self.errors = s3_errors("appending to s3://")
        self.ClientError = self.errors.ClientError
        self._hb: threading.Thread | None = None

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _side(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    def _code(self, e: Exception) -> str:
        return error_code(e)

    def _get(self, full: str) -> tuple[bytes, str, float] | None:
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=full)
        except self.ClientError as e:
            if self._code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return r["Body"].read(), r["ETag"], r["LastModified"].timestamp()

    def read(self, key: str) -> bytes | None:
        got = self._get(self._k(key))
        return None if got is None else got[0]

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except self.ClientError as e:
            if self._code(e) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise

    def write(self, txn: str, key: str, data: bytes) -> None:
        faults.point("put", f"{self.url}/{key}")
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def _delete_full(self, full: list[str]) -> None:
        for i in range(0, len(full), 1000):
            batch = full[i:i + 1000]
            if not batch:
                continue
            faults.point("delete", f"s3://{self.bucket}/{batch[0]}")
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in batch], "Quiet": True})

    def delete(self, keys: list[str]) -> None:
        self._delete_full([self._k(k) for k in keys])

    def _list(self, prefix: str) -> Iterator[tuple[str, int, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                      Prefix=prefix)
        for page in pages:
            for o in page.get("Contents", []):
                yield o["Key"], o["Size"], o["LastModified"]

    def keys(self) -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        for k, _, _ in self._list(base):
            yield k[len(base):]

    def listing(self) -> tuple[str, list[str]]:
        base = f"{self.prefix}/" if self.prefix else ""
        try:
            r = self.client.list_objects_v2(Bucket=self.bucket, Prefix=base, Delimiter="/",
                                            MaxKeys=100)
        except (self.errors.BotoCoreError, self.ClientError) as e:
            raise AppendError(f"{self.url} cannot be listed: {e}", code="DM167",
                              hint="check the bucket, the endpoint (--endpoint-url) and the "
                                   "credentials") from e
        names = [o["Key"][len(base):] for o in r.get("Contents", [])]
        names += [p["Prefix"][len(base):].rstrip("/") for p in r.get("CommonPrefixes", [])]
        return ("folder", names) if names else ("absent", [])

    def root_tag(self, key: str) -> Any:
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except self.ClientError as e:
            if self._code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return r["ETag"]

    def commit(self, txn: str, key: str, data: bytes, expected: Any) -> Any:
        faults.point("put", f"{self.url}/{key}")
        cond = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
        try:
            r = self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, **cond)
        except self.ClientError as e:
            if self._code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise AppendError(f"{self.url} was changed by another writer during this "
                                  "append; nothing was committed", code="DM166",
                                  hint="run the append again") from e
            raise
        return r["ETag"]

    # beside the target
    def read_journal(self) -> bytes | None:
        got = self._get(self._side(JOURNAL))
        return None if got is None else got[0]

    def write_journal(self, txn: str, data: bytes) -> None:
        faults.point("put", f"s3://{self.bucket}/{self._side(JOURNAL)}")
        self.client.put_object(Bucket=self.bucket, Key=self._side(JOURNAL), Body=data)

    def delete_journal(self) -> None:
        self._delete_full([self._side(JOURNAL)])

    def _backup(self, txn: str, key: str) -> str:
        return f"{self.prefix}{TXN}/{txn}/backup/{key}"

    def write_backup(self, txn: str, key: str, data: bytes) -> None:
        faults.point("put", f"s3://{self.bucket}/{self._backup(txn, key)}")
        self.client.put_object(Bucket=self.bucket, Key=self._backup(txn, key), Body=data)

    def read_backup(self, txn: str, key: str) -> bytes | None:
        got = self._get(self._backup(txn, key))
        return None if got is None else got[0]

    def backups(self, txn: str) -> set[str]:
        base = self._backup(txn, "")
        return {k[len(base):] for k, _, _ in self._list(base)}

    def end_txn(self, txn: str) -> None:
        doomed = [k for k, _, _ in self._list(self._backup(txn, ""))]
        self._delete_full(doomed)

    def clear_txns(self, keep: str | None = None) -> int:
        base = f"{self.prefix}{TXN}/"
        doomed = [k for k, _, _ in self._list(base)
                  if keep is None or not k.startswith(f"{base}{keep}/")]
        self._delete_full(doomed)
        return len({k[len(base):].split("/")[0] for k in doomed})

    # the lock (APP-020)
    def lock_info(self) -> LockInfo | None:
        got = self._get(self._side(LOCK))
        if got is None:
            return None
        data, etag, modified = got
        return LockInfo(parse_lock(data), time.time() - modified, etag)

    def lock(self, *, wait: bool, timeout: float | None, stale_age: float, poll: float,
             on_wait: Callable[[str], None] | None = None) -> HeldLock:
        owner = secrets.token_hex(8)
        key = self._side(LOCK)

        def once() -> HeldLock | None:
            body = lock_bytes(owner)
            faults.point("put", f"s3://{self.bucket}/{key}")
            try:
                r = self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                           IfNoneMatch="*")
                return _S3Held(self, owner, None, r["ETag"], stale_age)
            except self.ClientError as e:
                if self._code(e) not in ("PreconditionFailed", "412",
                                         "ConditionalRequestConflict"):
                    raise
            info = self.lock_info()
            if info is not None and info.stale(stale_age):
                try:  # replace exactly the stale lock that was seen
                    faults.point("put", f"s3://{self.bucket}/{key}")
                    r = self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                               IfMatch=info.tag)
                    return _S3Held(self, owner, info, r["ETag"], stale_age)
                except self.ClientError as e:
                    if self._code(e) not in ("PreconditionFailed", "412", "NoSuchKey",
                                             "ConditionalRequestConflict"):
                        raise
            return None

        return _wait_loop(once, self.lock_info, self.url, wait, timeout, poll, on_wait)


class _S3Held(HeldLock):
    """The S3 lock and its heartbeat: a conditional rewrite every ``stale_age / 2``."""

    def __init__(self, target: S3Target, owner: str, took: LockInfo | None, etag: str,
                 stale_age: float) -> None:
        super().__init__(target, owner, took)
        self.etag = etag
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(max(stale_age / 2, 0.2),),
                                        daemon=True, name="dm-append-heartbeat")
        self._thread.start()

    def _beat(self, interval: float) -> None:
        t: S3Target = self.target  # type: ignore[assignment]
        while not self._stop.wait(interval):
            try:
                r = t.client.put_object(Bucket=t.bucket, Key=t._side(LOCK),
                                        Body=lock_bytes(self.owner), IfMatch=self.etag)
                self.etag = r["ETag"]
            except Exception:
                return  # lost (taken over) or unreachable: still_held() says so before commit

    def release(self) -> None:
        from ..interrupt import shielded

        self._stop.set()
        self._thread.join(timeout=5)
        t: S3Target = self.target  # type: ignore[assignment]
        with shielded():  # a Ctrl-C during the release does not keep the lock (LCK-008)
            try:
                faults.point("delete", f"s3://{t.bucket}/{t._side(LOCK)}")
                t.client.delete_object(Bucket=t.bucket, Key=t._side(LOCK), IfMatch=self.etag)
            except t.ClientError:
                pass  # not ours any more


register("s3", S3Target)
