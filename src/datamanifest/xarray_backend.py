"""xarray's backend for chunk manifests: ``xr.open_dataset("tas.chunks.json")`` (SCHEMA.md
§25, §28 INT-020).

Registered as the ``datamanifest`` engine through the ``xarray.backends`` entry point of the
package, so that xarray's plugin machinery finds it:

>>> import xarray as xr
>>> ds = xr.open_dataset("tas.chunks.json", engine="datamanifest")   # or no engine at all
>>> ds = xr.open_mfdataset(["a.chunks.json", "b.chunks.json"], combine="by_coords")

The dataset is the one :func:`datamanifest.open_virtual` gives (lazy: a chunk is read when a
selection touches it), with the usual decoding options of ``open_dataset``
(``mask_and_scale``, ``decode_times``, ``decode_timedelta``, ``use_cftime``,
``concat_characters``, ``decode_coords``, ``drop_variables``) and ``group``. Each variable's
encoding carries ``chunks`` and ``preferred_chunks`` (the chunk manifest's chunk shape), so
``chunks={}`` gives dask chunks that match the stored chunks, as the zarr and h5netcdf engines
do. ``verify`` (default True) checks each source against its recorded identity before its
first chunk is read (CHK-011).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .optional import VIRTUAL, need
from .spec.virtual import SUFFIX

# xarray imports this module (the entry point) when it lists its engines, so it stays light:
# the chunk-manifest reader is imported on the first open
BackendEntrypoint = need("xarray.backends", **VIRTUAL).BackendEntrypoint


class DataManifestBackendEntrypoint(BackendEntrypoint):
    """The ``datamanifest`` engine of ``xarray.open_dataset`` for ``*.chunks.json``."""

    description = "Open datamanifest chunk manifests (*.chunks.json): sources read in place"
    url = "https://github.com/datamanifest/datamanifest/blob/main/SCHEMA.md#25-chunk-manifests"
    open_dataset_parameters = ("filename_or_obj", "mask_and_scale", "decode_times",
                               "concat_characters", "decode_coords", "drop_variables",
                               "use_cftime", "decode_timedelta", "group", "verify",
                               "document_url")

    def open_dataset(self, filename_or_obj: Any, *, mask_and_scale: bool = True,
                     decode_times: Any = True, concat_characters: bool = True,
                     decode_coords: Any = True, drop_variables: str | Iterable[str] | None = None,
                     use_cftime: bool | None = None, decode_timedelta: Any = None,
                     group: str | None = None, verify: bool = True,
                     document_url: str | None = None):
        """Open the chunk manifest ``filename_or_obj`` (a path or URL of a ``.chunks.json``
        document, its parsed dict, or a :class:`~datamanifest.spec.virtual.ChunkManifest`).

        Parameters
        ----------
        group
            The group to open (``"a/b"``; default the root).
        verify
            Check each source's size, ETag and modification time before its first chunk
            is read (CHK-011).
        document_url
            The location relative source URLs resolve against (default: the document's
            own, CHK-007).

        Returns
        -------
        xarray.Dataset
            Lazily read, decoded as the other arguments say.

        Raises
        ------
        datamanifest.errors.VirtualError
            DM150/DM151 a malformed document or reference, DM155 its checksum, DM074 no
            document there, DM152 a changed source (when a chunk of it is read).
        """
        from .virtual.store import Session, dataset, load_manifest

        manifest, doc_url = load_manifest(filename_or_obj, document_url)
        session = Session(manifest, doc_url, verify=verify)
        if isinstance(drop_variables, str):
            drop_variables = [drop_variables]
        try:
            ds = dataset(session, (group or "").strip("/"), decode=True,
                         mask_and_scale=mask_and_scale, decode_times=decode_times,
                         concat_characters=concat_characters, decode_coords=decode_coords,
                         drop_variables=list(drop_variables) if drop_variables else None,
                         use_cftime=use_cftime, decode_timedelta=decode_timedelta)
        except BaseException:
            session.close()
            raise
        _preferred_chunks(ds, manifest, (group or "").strip("/"))
        ds.set_close(session.close)
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for a path or URL whose name ends with ``.chunks.json`` (CHK-009)."""
        try:
            name = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return name.split("?", 1)[0].endswith(SUFFIX)


def _preferred_chunks(ds: Any, manifest: Any, group: str) -> None:
    from .spec.virtual import chunk_shape

    prefix = group + "/" if group else ""
    for name, var in ds.variables.items():
        node = manifest.nodes.get(prefix + str(name))
        if node is None or not node.is_array:
            continue
        shape = tuple(chunk_shape(node.metadata))
        if len(shape) != var.ndim:  # characters joined into strings: no chunk grid left
            continue
        var.encoding["chunks"] = shape
        var.encoding["preferred_chunks"] = dict(zip(var.dims, shape))
