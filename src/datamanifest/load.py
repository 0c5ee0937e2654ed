"""The load ladder in Python: per-dataset loader, format defaults, built-ins (SCHEMA.md §15).

:func:`load` returns the loaded object of a dataset (fetching it first when absent).
Built-in loaders use the standard library or an optional library installed through an
extra (``pip install 'datamanifest[csv]'``); a missing one is DM086 naming the extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import formats
from .errors import DataManifestError
from .optional import need
from .fetch.bindings import resolve_binding, substitute
from .spec.resolution import load_rung


def _need(module: str, extra: str, fmt: str) -> Any:
    """``module`` imported, or DM086 naming the extra (LAD-023; datamanifest.optional)."""
    return need(module, extra=extra, feature=f"loading {fmt}", error=DataManifestError,
                code="DM086")


def _chunk_manifest(path: Path, credentials: dict[str, str] | None = None) -> Any:
    """A virtual dataset (CHK-030): its chunk manifest opened as an xarray.Dataset, read
    in place from its sources (``credentials``: redacted source URL -> the manifest's)."""
    formats.dataset_format("chunk-manifest").require(
        error=DataManifestError, code="DM086", feature="loading chunk-manifest")
    from .virtual import open_virtual

    return open_virtual(path, credentials=credentials)


def _open_remote(uri: str, fmt: str) -> Any:
    """Open a lazy dataset in place through fsspec / xarray, without a local copy (LAD-024)."""
    from .io.objects import fsspec_mapper, fsspec_open

    _need("fsspec", "lazy", fmt)
    place = {"extra": "lazy", "feature": f"loading {fmt}"}
    found = formats.dataset_format(fmt)
    if found is not None:
        found.require(error=DataManifestError, code="DM086", feature=f"loading {fmt}")
    if fmt == "zarr":
        return _need("xarray", "zarr", fmt).open_zarr(fsspec_mapper(uri, **place))
    if fmt == "nc":
        return _need("xarray", "nc", fmt).open_dataset(fsspec_open(uri, **place))
    if found is None or found.loads is None:
        raise DataManifestError(f"no lazy loader for format {fmt!r}", code="DM087",
                                hint="give the dataset a loader binding; it receives the URI "
                                     "as $path")
    with fsspec_open(uri, **place) as f:
        return found.loads(f.read())


def _lazy_location(project, ds) -> tuple[str, bool]:
    """(where a lazy dataset is, whether that is a local path)."""
    from .io.places import local_path, scheme_of

    if scheme_of(ds.uri) == "file":
        return str(local_path(ds.uri, project.root)), True
    return ds.uri, False


def load(project, ident: str, *, offline: bool = False, trusted: bool = False) -> Any:
    """Load dataset ``ident`` (name, alias or doi) with the load ladder for Python (LAD-010..013).

    Fetches it (and its requirements) first when it is not present, unless ``offline``.
    A folder dataset whose format has no loader (an extracted archive, ``uris``, a git
    clone) returns its folder's :class:`~pathlib.Path` (LAD-025).

    Raises
    ------
    DataManifestError
        DM078 when absent offline, DM082 for a binding that cannot be imported, DM086 when
        a built-in loader's library is missing, DM087 when there is no loader, DM091 when
        the dataset is refused (MAN-012), DM180 when its loader is a binding the manifest
        names and the manifest is not trusted (TRU-004; ``trusted=True`` vouches for it),
        before anything is imported or fetched, and the fetch's errors.
    """
    name = project.resolve(ident)
    refusal = project.refusal(name)
    if refusal is not None:  # MAN-012: its closure has errors
        raise refusal
    try:
        return _load(project, name, offline, trusted)
    except DataManifestError as e:  # DIAG-001: located at the dataset's entry
        if e.file is None:
            e.file = str(project.manifest_path)
            e.line, e.column = project.entry_position(name)
        raise


def _load(project, name: str, offline: bool, trusted: bool = False) -> Any:
    ds = project.dataset(name)
    rung = load_rung(project.manifest, ds, "python", formats.loadable())
    if rung["rung"] == "error" and ds.is_folder and not ds.lazy_access:
        # LAD-025: a folder dataset without a loader for its format (an extracted archive,
        # uris, a git clone) loads as its folder
        if project.locate(name) is None and not offline:
            project.fetch([name], trusted=trusted)
        return project.path(name)
    if rung["rung"] == "error":
        raise DataManifestError(f"dataset {name!r} has no loader for format "
                                f"{ds.effective_format or 'unknown'!r}", code="DM087",
                                hint="set loader = \"module:function\", or format = ...")
    if not trusted and rung["rung"] != "built-in":
        project.require_trust("load", load=[name])
    if ds.lazy_access:  # LAD-024: opened in place, never copied, never recorded
        where, local = _lazy_location(project, ds)
        if rung["rung"] == "built-in":
            return formats.load(ds.effective_format, Path(where)) if local else \
                _open_remote(where, ds.effective_format)
        path: Any = where
    else:
        if project.locate(name) is None and not offline:
            project.fetch([name], trusted=trusted)
        path = project.path(name)
    if rung["rung"] == "built-in":
        if ds.virtual and ds.effective_format == "chunk-manifest":  # SEC-002: its document holds the sources' URLs redacted
            from .spec.secrets import redact_uri

            urls = [ds.uri] if ds.uri else ds.uris
            return _chunk_manifest(path, {redact_uri(u): u for u in urls if redact_uri(u) != u})
        return formats.load(ds.effective_format, path)
    binding = _binding_for(project, ds, rung)
    fn = resolve_binding(rung["ref"], project.root)
    if isinstance(binding, str) or binding is None:
        return fn(str(path))
    args = binding.get("args", []) if isinstance(binding, dict) else binding.args
    kwargs = binding.get("kwargs", {}) if isinstance(binding, dict) else binding.kwargs
    variables = {"path": str(path), "key": ds.derived_key, "uri": ds.uri, "version": ds.version,
                 "doi": ds.doi, "format": ds.effective_format, "branch": ds.branch,
                 "project_root": str(project.root)}
    return fn(*substitute(list(args), variables), **substitute(dict(kwargs), variables))


def _binding_for(project, ds, rung: dict[str, Any]) -> Any:
    if rung["rung"] == "per-dataset":
        lang = ds.lang.get("python") if isinstance(ds.lang.get("python"), dict) else {}
        return lang.get("loader") or ds.loader
    fmt = ds.effective_format
    lang_top = project.manifest.structural.get("_LANG", {}).get("python", {})
    loaders = lang_top.get("loaders", {}) if isinstance(lang_top, dict) else {}
    return loaders.get(fmt) or project.manifest.structural.get("_LOADERS", {}).get(fmt)
