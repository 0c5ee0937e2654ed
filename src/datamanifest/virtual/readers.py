"""One reader interface for every place a source can be (SCHEMA.md CHK-011, CHK-012).

:func:`open_reader` gives a :class:`Reader` for a local path or ``file://`` URL (``pread``
on one descriptor), ``http(s)://`` (Range requests through httpx) and ``s3://``, ``gs://``,
``az://`` (obstore; see ``design/2026-12-02-chunk-manifests.md`` for why obstore). Every
reader tells its source's :class:`Identity` and reads many byte ranges in one call,
coalescing those that are adjacent or close (CHK-012) and, remotely, issuing the
coalesced requests concurrently.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..errors import VirtualError
from ..optional import VIRTUAL, need

#: ranges closer than this are read as one (bytes); a local read of a small gap costs less
#: than another system call, a remote one less than another request
LOCAL_GAP = 64 * 1024
REMOTE_GAP = 1024 * 1024
#: a coalesced read is cut at this size, so memory stays bounded and reads run in parallel
MAX_BLOCK = 16 * 1024 * 1024


@dataclass(frozen=True)
class Identity:
    """What a source is now (CHK-011): ``size`` in bytes, ``etag`` and ``last_modified``
    (RFC 3339 UTC) when the place provides them."""

    size: int
    etag: str | None = None
    last_modified: str | None = None


class Reader(Protocol):
    """A source's bytes. ``read_ranges`` returns one bytes-like object per ``(offset,
    length)``, in order; a short read is :class:`VirtualError` (DM074)."""

    url: str

    def identity(self) -> Identity: ...

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes | memoryview]: ...

    def close(self) -> None: ...


def coalesce(ranges: Sequence[tuple[int, int]], gap: int,
             max_block: int = MAX_BLOCK) -> list[tuple[int, int, list[int]]]:
    """Blocks ``(start, end, [indices of the ranges inside])`` covering ``ranges``: ranges
    are merged when the hole between them is at most ``gap`` bytes and the block stays
    under ``max_block`` bytes (a single longer range is its own block)."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    blocks: list[tuple[int, int, list[int]]] = []
    start = end = -1
    members: list[int] = []
    for i in order:
        off, n = ranges[i]
        if members and off - end <= gap and max(end, off + n) - start <= max_block:
            end = max(end, off + n)
            members.append(i)
        else:
            if members:
                blocks.append((start, end, members))
            start, end, members = off, off + n, [i]
    if members:
        blocks.append((start, end, members))
    return blocks


def _split_blocks(ranges: Sequence[tuple[int, int]], blocks, fetch) -> list:
    """Read each block with ``fetch(start, end)`` and cut it into the ranges."""
    out: list = [None] * len(ranges)
    for (start, end, members), data in zip(blocks, fetch(blocks)):
        view = memoryview(data)
        if len(view) < end - start:
            raise VirtualError(f"short read: {len(view)} of {end - start} bytes at {start}",
                               code="DM074", hint="the source is shorter than its references")
        for i in members:
            off, n = ranges[i]
            out[i] = view[off - start: off - start + n]
    return out


def _rfc3339(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LocalReader:
    """A local file read with ``os.pread`` on one descriptor (thread-safe)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = local_path(url)
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise VirtualError(f"source {self.path} does not exist", code="DM074",
                               hint="a chunk manifest references files by URL; check it "
                               "(`datamanifest refs info`)") from None
        except OSError as e:
            raise VirtualError(f"cannot open {self.path}: {e.strerror}", code="DM074") from e

    def identity(self) -> Identity:
        st = os.fstat(self.fd)
        return Identity(st.st_size, None, _rfc3339(st.st_mtime_ns / 1e9))

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list:
        blocks = coalesce(ranges, LOCAL_GAP)
        return _split_blocks(ranges, blocks,
                             lambda bs: (os.pread(self.fd, e - s, s) for s, e, _ in bs))

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class HTTPReader:
    """An http(s) resource read with Range requests (one per coalesced block, up to
    ``jobs`` at once). Credentials come from ``~/.netrc`` as for fetching."""

    def __init__(self, url: str, jobs: int = 8) -> None:
        import httpx

        from ..fetch.sources import _netrc_auth

        self.url = url
        self.jobs = jobs
        self.client = httpx.Client(follow_redirects=True, timeout=60, auth=_netrc_auth(),
                                   headers={"User-Agent": _user_agent()})
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _send(self, method: str, headers: dict | None = None):
        """One request; a connection that fails is DM071 (FET-010)."""
        import httpx

        try:
            return self.client.request(method, self.url, headers=headers)
        except httpx.HTTPError as e:
            raise VirtualError(f"source {self.url}: {type(e).__name__}: {e}", code="DM071",
                               hint="check the network and the URL") from None

    def identity(self) -> Identity:
        r = self._send("HEAD")
        if r.status_code == 404:
            raise VirtualError(f"source {self.url} is not found (HTTP 404)", code="DM074")
        if r.status_code >= 400:
            raise VirtualError(f"source {self.url}: HTTP {r.status_code}", code="DM071")
        size = int(r.headers.get("content-length", -1))
        modified = r.headers.get("last-modified")
        return Identity(size, r.headers.get("etag"), _http_date(modified) if modified else None)

    def _get(self, start: int, end: int) -> bytes:
        r = self._send("GET", {"Range": f"bytes={start}-{end - 1}"})
        if r.status_code == 200 and start == 0 and len(r.content) >= end:
            return r.content[:end]
        if r.status_code != 206:
            raise VirtualError(f"source {self.url}: HTTP {r.status_code} to a range request",
                               code="DM071", hint="the server must answer Range requests")
        return r.content

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list:
        blocks = coalesce(ranges, REMOTE_GAP)

        def fetch(bs):
            if len(bs) == 1:
                return [self._get(bs[0][0], bs[0][1])]
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="dm-range")
            return list(self._pool.map(lambda b: self._get(b[0], b[1]), bs))
        return _split_blocks(ranges, blocks, fetch)

    def close(self) -> None:
        self.client.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


class ObjectStoreReader:
    """An ``s3://``, ``gs://`` or ``az://`` object read with obstore, which issues the
    coalesced ranges concurrently. Endpoints and credentials come from each store's usual
    environment variables (``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``, ...)."""

    def __init__(self, url: str) -> None:
        obstore = need("obstore", **VIRTUAL)
        from_url = need("obstore.store", **VIRTUAL).from_url
        self.url = url
        parts = urlsplit(url)
        self._obs = obstore
        self.path = unquote(parts.path.lstrip("/"))
        if not parts.netloc or not self.path:
            raise VirtualError(f"{url} names no object (a bucket or container, then a key)",
                               code="DM015", hint=f"{parts.scheme}://bucket/path/file.nc")
        try:
            self.store = from_url(f"{parts.scheme}://{parts.netloc}",
                                  **_store_options(parts.scheme))
        except Exception as e:  # obstore's own error classes: a malformed URL or settings
            raise VirtualError(f"source {url}: {e}", code="DM071",
                               hint="check the URL and the store's endpoint and credential "
                                    "settings") from None

    def identity(self) -> Identity:
        try:
            meta = self._obs.head(self.store, self.path)
        except FileNotFoundError:
            raise VirtualError(f"source {self.url} is not found", code="DM074") from None
        except Exception as e:  # obstore raises its own error classes per store
            raise VirtualError(f"source {self.url}: {e}", code="DM071") from e
        modified = meta.get("last_modified")
        return Identity(int(meta["size"]), meta.get("e_tag"),
                        modified.astimezone(_dt.timezone.utc).strftime(
                            "%Y-%m-%dT%H:%M:%S.%fZ") if modified else None)

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list:
        blocks = coalesce(ranges, REMOTE_GAP)

        def fetch(bs):
            try:
                return self._obs.get_ranges(self.store, self.path,
                                            starts=[b[0] for b in bs], ends=[b[1] for b in bs])
            except Exception as e:
                raise VirtualError(f"source {self.url}: {e}", code="DM071") from e
        return _split_blocks(ranges, blocks, fetch)

    def close(self) -> None:
        pass


def _store_options(scheme: str) -> dict:
    env = os.environ
    if scheme == "s3":
        opts: dict = {}
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["endpoint"] = endpoint
            if endpoint.startswith("http://"):
                opts["client_options"] = {"allow_http": True}
        if env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION"):
            opts["region"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        return opts
    if scheme in ("az", "abfs", "azure"):
        conn = env.get("AZURE_STORAGE_CONNECTION_STRING", "")
        if conn:  # the standard connection string: account, key, and an endpoint if given
            parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
            opts = {}
            if parts.get("AccountName"):
                opts["account_name"] = parts["AccountName"]
            if parts.get("AccountKey"):
                opts["access_key"] = parts["AccountKey"]
            if parts.get("BlobEndpoint"):
                opts["endpoint"] = parts["BlobEndpoint"]
                if parts["BlobEndpoint"].startswith("http://"):
                    opts["client_options"] = {"allow_http": True}
            return opts
        return {"use_emulator": True} if env.get("AZURE_STORAGE_USE_EMULATOR") else {}
    if scheme in ("gs", "gcs") and env.get("STORAGE_EMULATOR_HOST"):
        import json as _json

        host = env["STORAGE_EMULATOR_HOST"]
        host = host if "://" in host else "http://" + host
        key = {"gcs_base_url": host, "disable_oauth": True, "client_email": "",
               "private_key": "", "private_key_id": ""}
        return {"service_account_key": _json.dumps(key),
                "client_options": {"allow_http": host.startswith("http://")}}
    return {}


def _http_date(value: str) -> str | None:
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).astimezone(_dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
    except (TypeError, ValueError):
        return None


def _user_agent() -> str:
    from .._version import __version__

    return f"datamanifest/{__version__}"


def local_path(url: str) -> str:
    """The path of a ``file://`` URL or a plain path."""
    if url.startswith("file://"):
        return unquote(urlsplit(url).path)
    return url


def open_reader(url: str) -> Reader:
    """The :class:`Reader` for an absolute URL or local path.

    Raises :class:`VirtualError` (DM072 for a scheme without a reader, DM074 absent, DM015
    a malformed URL, DM071 a store that cannot be reached).
    """
    try:
        scheme = urlsplit(url).scheme.lower() if "://" in url else "file"
    except ValueError as e:  # e.g. an unclosed IPv6 bracket
        raise VirtualError(f"{url} is not a valid URL: {e}", code="DM015") from None
    if scheme == "file":
        return LocalReader(url)
    if scheme in ("http", "https"):
        return HTTPReader(url)
    if scheme in ("s3", "gs", "gcs", "az", "abfs", "azure"):
        return ObjectStoreReader(url)
    raise VirtualError(f"no reader for {scheme}:// sources ({url})", code="DM072",
                       hint="chunk manifests read file, http(s), s3, gs and az sources")


class BlockFile:
    """A read-only, seekable binary file over a :class:`Reader`, caching aligned blocks:
    what h5py opens to read a remote file's metadata with few range requests."""

    def __init__(self, reader: Reader, size: int, block: int = 256 * 1024) -> None:
        self.reader, self.size, self.block = reader, size, block
        self.pos = 0
        self.cache: dict[int, bytes] = {}
        self.fetched = 0  # bytes read from the source

    def _blocks(self, first: int, last: int) -> None:
        need = [b for b in range(first, last + 1) if b not in self.cache]
        if not need:
            return
        ranges = [(b * self.block, min(self.block, self.size - b * self.block)) for b in need]
        for b, data in zip(need, self.reader.read_ranges(ranges)):
            self.cache[b] = bytes(data)
            self.fetched += len(data)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = max(0, min(n, self.size - self.pos))
        if n == 0:
            return b""
        first, last = self.pos // self.block, (self.pos + n - 1) // self.block
        self._blocks(first, last)
        data = b"".join(self.cache[b] for b in range(first, last + 1))
        start = self.pos - first * self.block
        self.pos += n
        return data[start: start + n]

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else \
            self.size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass
