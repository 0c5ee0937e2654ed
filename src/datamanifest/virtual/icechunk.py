"""A chunk manifest written into an Icechunk repository as virtual references.

Each array's metadata is written as its ``zarr.json`` (as the ``ChunkStore`` serves it),
each referenced chunk as an Icechunk virtual chunk pinned by its source's ETag (or, when
the place has none, its modification time), each inline chunk as a native chunk; one
commit. Icechunk then refuses, as we do (CHK-011), to read a chunk whose source changed.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import VirtualError
from ..spec import virtual
from ..optional import need

ICECHUNK = {"extra": "icechunk", "feature": "Icechunk export"}


def _container(url: str) -> tuple[str, Any]:
    """(URL prefix, object store configuration) of the container a source lies in."""
    icechunk = need("icechunk", **ICECHUNK)
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}/", icechunk.http_store()
    if parts.scheme == "s3":
        import os

        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return f"s3://{parts.netloc}/", icechunk.s3_store(
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            endpoint_url=endpoint, allow_http=bool(endpoint and endpoint.startswith("http:")),
            s3_compatible=bool(endpoint), force_path_style=bool(endpoint))
    if parts.scheme in ("gs", "gcs"):
        return f"gcs://{parts.netloc}/", icechunk.gcs_store()
    raise VirtualError(f"no Icechunk virtual chunk container for {parts.scheme}:// sources",
                       code="DM153")


def _quiet() -> None:
    """Icechunk's own log lines (a WARN that local storage is not safe for concurrent
    commits, written on stdout in colour) are not ours to print: only errors, unless the
    user chose a filter with ``ICECHUNK_LOG``. Keeps ``--json`` output JSON only."""
    import os

    icechunk = need("icechunk", **ICECHUNK)
    if "ICECHUNK_LOG" not in os.environ and hasattr(icechunk, "set_logs_filter"):
        icechunk.set_logs_filter("error")


def _pin(src: virtual.Source) -> str | _dt.datetime | None:
    if src.etag:
        return src.etag.strip('"')
    if src.last_modified:
        t = _dt.datetime.fromisoformat(src.last_modified.replace("Z", "+00:00"))
        # Icechunk keeps seconds: the next whole second still excludes any later change
        return (t + _dt.timedelta(seconds=1)).replace(microsecond=0)
    return None


def repository_config(manifest: virtual.ChunkManifest, document_url: str | None = None):
    """(RepositoryConfig, authorizations) that let Icechunk read the manifest's sources."""
    icechunk = need("icechunk", **ICECHUNK)

    import os

    config = icechunk.RepositoryConfig.default()
    prefixes: dict[str, Any] = {}
    local = []
    for i in range(len(manifest.sources)):
        url = manifest.url_of(i, document_url)
        if url.startswith("file://"):
            local.append(urlsplit(url).path)
            continue
        prefix, store = _container(url)
        prefixes.setdefault(prefix, store)
    if local:  # one container for the local files: their common folder (a path is required)
        common = os.path.commonpath([os.path.dirname(p) for p in local]).rstrip("/") or "/"
        prefixes["file://" + common.rstrip("/") + "/"] = icechunk.local_filesystem_store(common)
    for prefix, store in prefixes.items():
        config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(prefix, store))
    return config, {p: None for p in prefixes}


def to_icechunk(manifest: virtual.ChunkManifest, repository: str | Path, *,
                branch: str = "main", message: str = "virtual references (datamanifest)",
                document_url: str | None = None) -> str:
    """Write ``manifest`` into a new Icechunk repository at the local folder
    ``repository``; returns the snapshot id of the commit. Raises :class:`VirtualError`
    (DM153 for sources it cannot reach); MissingDependency (DM170) without icechunk."""
    icechunk = need("icechunk", **ICECHUNK)
    default_buffer_prototype = need("zarr.core.buffer", **ICECHUNK).default_buffer_prototype
    sync = need("zarr.core.sync", **ICECHUNK).sync
    from .zarrstore import _served

    _quiet()
    config, authorize = repository_config(manifest, document_url)
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(repository)),
                                      config, authorize_virtual_chunk_access=authorize)
    session = repo.writable_session(branch)
    store = session.store
    proto = default_buffer_prototype()
    for path, node in manifest.nodes.items():
        key = f"{path}/zarr.json" if path else "zarr.json"
        sync(store.set(key, proto.buffer.from_bytes(json.dumps(_served(node)).encode())))
        if not node.is_array:
            continue
        specs = []
        for index, s, offset, length in node.refs.references():
            specs.append(icechunk.VirtualChunkSpec(
                list(index), manifest.url_of(s, document_url), offset, length,
                **({"etag_checksum": p} if isinstance(p := _pin(manifest.sources[s]), str)
                   else {"last_updated_at_checksum": p} if p is not None else {})))
        if specs:
            failed = store.set_virtual_refs(path, specs)
            if failed:
                raise VirtualError(f"Icechunk refused {len(failed)} references of {path!r}",
                                   code="DM153")
        prefix = path + "/" if path else ""
        for k, data in node.refs.inline.items():
            index = virtual.parse_index_key(k, len(node.refs.grid))
            sync(store.set(prefix + virtual.chunk_key(node.metadata, index),
                           proto.buffer.from_bytes(data)))
    return session.commit(message)


def open_icechunk(repository: str | Path, manifest: virtual.ChunkManifest,
                  document_url: str | None = None, branch: str = "main"):
    """A read-only Icechunk store of a repository :func:`to_icechunk` wrote."""
    icechunk = need("icechunk", **ICECHUNK)

    _quiet()
    config, authorize = repository_config(manifest, document_url)
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(repository)), config,
                                    authorize_virtual_chunk_access=authorize)
    return repo.readonly_session(branch=branch).store
