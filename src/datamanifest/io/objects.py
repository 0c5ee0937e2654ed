"""The object-store families: s3, gs, az (FET-001, FET-016, CHK-012, APP-022, TREE-010).

Each client is built here and nowhere else, with its endpoint and credentials from the
store's usual settings (never from a manifest), and each operation uses the client that
serves it best, as measured in ``bench/object_clients.py`` and explained in
``design/2026-12-03-package-map.md``:

=====================  ==========================  ===========================================
operation              client                      why
=====================  ==========================  ===========================================
byte ranges (virtual,  obstore, all families       concurrent coalesced ranges: 256 ranges
files opened in place) (:func:`obstore_store`)     in 0.26 s where boto3 one by one takes 9 s
streamed GET (fetch)   s3: boto3                   as fast (1085 vs 913 MB/s), the whole AWS
                       (:func:`s3_client`)         credential chain, safe in forked workers
                                                   (obstore hangs in a child forked after use)
                       gs, az: fsspec (gcsfs,      gcsfs reaches the JSON-only emulator that
                       adlfs; :func:`fsspec_fs`)   obstore (XML API) cannot; adlfs keeps
                                                   azure-identity's chain and fork safety
conditional PUT and    s3: boto3                   obstore has no conditional DELETE (the
DELETE, listing with                               append lock's release) and lists without
versions (append, tree)                            version ids
=====================  ==========================  ===========================================

Errors are raised as the class the caller passes (its capability's): DM015 a URL naming no
object, DM074 absent, DM071 anything else; a missing client library is DM170 naming the
extra that installs it (DIAG-020).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import DataManifestError, FetchError
from ..optional import VIRTUAL, need
from .base import Identity, Stream, coalesce, rfc3339_of, split_blocks
from .http import REMOTE_GAP

#: bytes per read of an fsspec stream, and per chunk of a boto3 one
OBJECT_BLOCK = 8 * 1024 * 1024
CHUNK = 1024 * 1024

#: object-store schemes read through fsspec -> (extra, fsspec implementation package)
FSSPEC_SCHEMES = {
    "gs": ("gs", "gcsfs"),
    "gcs": ("gs", "gcsfs"),
    "az": ("az", "adlfs"),
    "abfs": ("az", "adlfs"),
}

_stores: dict[tuple[int, str, str], Any] = {}
_stores_lock = threading.Lock()
#: True once obstore ran in this process: its runtime does not survive a fork (a child
#: forked afterwards hangs), so fetch then works in threads (see obstore_used)
_OBSTORE_USED = False


def obstore_used() -> bool:
    """Whether obstore has run in this process (fetch forks no workers then)."""
    return _OBSTORE_USED


def split_object(url: str, error: type[DataManifestError] = DataManifestError
                 ) -> tuple[str, str, str]:
    """``(scheme, bucket, key)`` of ``scheme://bucket/key``. Raises ``error`` DM015 for a
    malformed URL or one that names no object (a bucket or container, then a key)."""
    try:
        parts = urlsplit(url)
    except ValueError as e:  # e.g. an unclosed IPv6 bracket
        raise error(f"{url} is not a valid URL: {e}", code="DM015") from e
    key = unquote(parts.path.lstrip("/"))
    if not parts.netloc or not key:
        raise error(f"{url} names no object (a bucket or container, then a key)",
                    code="DM015", hint=f"{parts.scheme}://bucket/path/file.nc")
    return parts.scheme.lower(), parts.netloc, key


# -- obstore: byte ranges -------------------------------------------------------------------------
def store_options(scheme: str) -> dict:
    """obstore's settings for ``scheme`` from the environment: ``AWS_ENDPOINT_URL``(``_S3``),
    ``AWS_REGION``; ``AZURE_STORAGE_CONNECTION_STRING`` (account, key, endpoint) or
    ``AZURE_STORAGE_USE_EMULATOR``; ``STORAGE_EMULATOR_HOST`` for a GCS emulator. An
    ``http://`` endpoint is allowed explicitly."""
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
        host = env["STORAGE_EMULATOR_HOST"]
        host = host if "://" in host else "http://" + host
        key = {"gcs_base_url": host, "disable_oauth": True, "client_email": "",
               "private_key": "", "private_key_id": ""}
        return {"service_account_key": json.dumps(key),
                "client_options": {"allow_http": host.startswith("http://")}}
    return {}


def obstore_store(scheme: str, bucket: str, error: type[DataManifestError] = DataManifestError):
    """The obstore store of ``scheme://bucket`` (one per bucket and process). Raises
    ``error`` DM071 for settings obstore refuses; DM170 without obstore."""
    global _OBSTORE_USED
    from_url = need("obstore.store", **VIRTUAL).from_url
    key = (os.getpid(), scheme, bucket)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            try:
                store = from_url(f"{scheme}://{bucket}", **store_options(scheme))
            except Exception as e:  # obstore's own error classes: a malformed URL or settings
                raise error(f"{scheme}://{bucket}: {e}", code="DM071",
                            hint="check the URL and the store's endpoint and credential "
                                 "settings") from e
            _stores[key] = store
        _OBSTORE_USED = True
    return store


class ObjectRanges:
    """An ``s3://``, ``gs://`` or ``az://`` object read by ranges with obstore, which issues
    the coalesced ranges concurrently. Raises ``error``: DM015 no object named, DM074
    absent, DM071 any other failure."""

    def __init__(self, url: str, error: type[DataManifestError] = DataManifestError) -> None:
        self.url = url
        self.error = error
        self._obs = need("obstore", **VIRTUAL)
        scheme, bucket, self.path = split_object(url, error)
        self.store = obstore_store(scheme, bucket, error)

    def identity(self) -> Identity:
        try:
            meta = self._obs.head(self.store, self.path)
        except FileNotFoundError as e:
            raise self.error(f"source {self.url} is not found", code="DM074") from e
        except Exception as e:  # obstore raises its own error classes per store
            raise self.error(f"source {self.url}: {e}", code="DM071") from e
        modified = meta.get("last_modified")
        return Identity(int(meta["size"]), meta.get("e_tag"),
                        rfc3339_of(modified) if modified else None)

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list:
        blocks = coalesce(ranges, REMOTE_GAP)

        def fetch(bs):
            try:
                return self._obs.get_ranges(self.store, self.path,
                                            starts=[b[0] for b in bs], ends=[b[1] for b in bs])
            except Exception as e:
                raise self.error(f"source {self.url}: {e}", code="DM071") from e
        return split_blocks(ranges, blocks, fetch, self.error)

    def close(self) -> None:
        """Nothing to release: the store is shared."""


# -- boto3: S3 ------------------------------------------------------------------------------------
def s3_client(feature: str, **kwargs: Any):
    """A boto3 S3 client (endpoint and credentials from the usual AWS settings such as
    ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``; ``kwargs`` override them: ``endpoint_url``,
    ``region_name``, ``aws_access_key_id``, ``aws_secret_access_key``, ``config``). DM170
    naming the ``s3`` extra without boto3; ``feature`` says what for."""
    boto3 = need("boto3", extra="s3", feature=feature)
    return boto3.client("s3", **kwargs)


def s3_errors(feature: str):
    """botocore's exception module (``ClientError``, ``BotoCoreError``)."""
    return need("botocore.exceptions", extra="s3", feature=feature)


def s3_config(**kwargs: Any):
    """A botocore ``Config``."""
    return need("botocore.config", extra="s3", feature="s3").Config(**kwargs)


def error_code(e: Exception) -> str:
    """The S3 error code of a botocore ``ClientError`` (``NoSuchKey``, ``412``, ...)."""
    return getattr(e, "response", {}).get("Error", {}).get("Code", "")


class S3Stream(Stream):
    """A streaming GET of ``s3://bucket/key`` through boto3 (FET-001). Raises FetchError
    DM074 (no such key or bucket), DM071 (any other failure, or a body cut short)."""

    def __init__(self, uri: str) -> None:
        self.errors = errors = s3_errors(f"fetching {uri}")
        parts = urlsplit(uri)
        self.uri = uri
        try:
            obj = s3_client(f"fetching {uri}").get_object(Bucket=parts.netloc,
                                                          Key=parts.path.lstrip("/"))
        except errors.ClientError as e:
            code = error_code(e)
            raise FetchError(f"{uri}: {code or e}", code="DM074" if code in (
                "NoSuchKey", "NoSuchBucket", "404") else "DM071") from e
        except errors.BotoCoreError as e:
            raise FetchError(f"{uri}: {e}", code="DM071") from e
        self.body = obj["Body"]
        self.size = obj.get("ContentLength")

    def chunks(self) -> Iterator[bytes]:
        got = 0
        try:
            for chunk in self.body.iter_chunks(CHUNK):
                got += len(chunk)
                yield chunk
        except (self.errors.BotoCoreError, OSError) as e:  # a connection cut midway
            raise FetchError(f"{self.uri}: download interrupted after {got} bytes: {e}",
                             code="DM071", hint="run the fetch again") from e
        if self.size is not None and got != self.size:
            raise FetchError(f"{self.uri}: received {got} of {self.size} bytes", code="DM071",
                             hint="run the fetch again")

    def close(self) -> None:
        self.body.close()


# -- fsspec: gs, az streams and files opened in place ---------------------------------------------
def fsspec_options(scheme: str) -> dict:
    """fsspec storage options beyond each library's own settings.

    An emulator named by ``STORAGE_EMULATOR_HOST`` checks no credentials, so without
    ``GOOGLE_APPLICATION_CREDENTIALS`` gcsfs is told to send none instead of probing the
    cloud's metadata server (which waits out its timeouts off the cloud).
    """
    if FSSPEC_SCHEMES.get(scheme, ("",))[0] == "gs" and os.environ.get("STORAGE_EMULATOR_HOST") \
            and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return {"token": "anon"}
    return {}


def fsspec_fs(uri: str, *, extra: str, feature: str):
    """``(filesystem, path)`` of ``uri`` through fsspec, the scheme's implementation checked
    first (DM170 naming ``extra``). Other errors are the library's."""
    fsspec = need("fsspec", extra=extra, feature=feature)
    scheme = uri.partition("://")[0].lower()
    if scheme in FSSPEC_SCHEMES:
        need(FSSPEC_SCHEMES[scheme][1], extra=extra, feature=feature)
    return fsspec.core.url_to_fs(uri, **fsspec_options(scheme))


def fsspec_open(uri: str, *, extra: str, feature: str):
    """A binary file object of ``uri`` opened through fsspec (a lazy dataset, a slice)."""
    fsspec = need("fsspec", extra=extra, feature=feature)
    return fsspec.open(uri, "rb", **fsspec_options(uri.partition("://")[0].lower())).open()


def fsspec_mapper(uri: str, *, extra: str, feature: str):
    """A key-value mapping of the prefix ``uri`` through fsspec (a Zarr store in place)."""
    fsspec = need("fsspec", extra=extra, feature=feature)
    return fsspec.get_mapper(uri, **fsspec_options(uri.partition("://")[0].lower()))


class FsspecStream(Stream):
    """A streaming read of ``gs://bucket/key`` or ``az://container/path`` through fsspec
    (FET-016).

    The endpoint and credentials come from each store's usual settings (for example
    ``STORAGE_EMULATOR_HOST`` / ``GOOGLE_APPLICATION_CREDENTIALS`` for gcsfs,
    ``AZURE_STORAGE_CONNECTION_STRING`` or ``AZURE_STORAGE_ACCOUNT_NAME`` for adlfs), never
    from the manifest. ``size`` is the object's size in bytes. Raises FetchError DM170 when
    the scheme's fsspec implementation is not installed (naming the extra), DM074 for a
    missing object, DM071 for any other failure or a body cut short.
    """

    def __init__(self, uri: str) -> None:
        extra = FSSPEC_SCHEMES[uri.partition("://")[0].lower()][0]
        self.uri = uri
        try:
            fs, path = fsspec_fs(uri, extra=extra, feature=f"fetching {uri}")
        except DataManifestError:
            raise
        except Exception as e:  # bad credentials settings, malformed URI
            raise FetchError(f"{uri}: cannot open the object store: {e}", code="DM071",
                             hint="check the store's endpoint and credential settings") from e
        try:
            info = fs.info(path)
            if info.get("type") == "directory":
                raise IsADirectoryError(path)
            self.f = fs.open(path, "rb", block_size=OBJECT_BLOCK, cache_type="none")
        except FileNotFoundError as e:
            raise FetchError(f"{uri}: no such object", code="DM074",
                             hint="check the bucket or container and the key") from e
        except IsADirectoryError as e:
            raise FetchError(f"{uri} is a prefix, not an object", code="DM074",
                             hint="point uri at one object, or use uris for several") from e
        except Exception as e:
            raise FetchError(f"{uri}: {type(e).__name__}: {e}", code="DM071",
                             hint="check the store's endpoint and credential settings") from e
        self.size = info.get("size")

    def chunks(self) -> Iterator[bytes]:
        got = 0
        try:
            while chunk := self.f.read(OBJECT_BLOCK):
                got += len(chunk)
                yield chunk
        except Exception as e:  # a cut connection surfaces as the library's own error
            raise FetchError(f"{self.uri}: download interrupted after {got} bytes: "
                             f"{type(e).__name__}: {e}", code="DM071",
                             hint="run the fetch again") from e
        if self.size is not None and got != self.size:
            raise FetchError(f"{self.uri}: received {got} of {self.size} bytes", code="DM071",
                             hint="run the fetch again")

    def close(self) -> None:
        f = getattr(self, "f", None)
        if f is not None:
            f.close()
