"""Transactional appends to Zarr stores (SCHEMA.md §26).

>>> import datamanifest
>>> results = datamanifest.append("cube.zarr", ["day1.nc", "day2.nc"], append_step="1D")

``datamanifest.append`` is :func:`append` (a plain function); this package is
``datamanifest.appends`` (the capability's modules beside its rules in
:mod:`datamanifest.spec.appends`).

* :func:`append` -- append slices, one transaction each (APP-022); the first creates the
  target (APP-023);
* :func:`recover` -- repair a pending transaction now (APP-024; every append does it first);
* :func:`status` -- the committed length, a pending transaction, the lock holder;
* :func:`load_config` -- append configurations (APP-001) from TOML files, merged (APP-002).

Readers need nothing of ours: ``xarray.open_zarr(target)`` reads the committed view.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import AppendError
from ..optional import APPEND, need
from ..spec.appends import AppendConfig, AppendSpecError, config_from_dict, merge

need("numpy", **APPEND)  # the modules below use it (DIAG-020: DM170 naming [append])

from . import object_targets  # noqa: E402,F401 - registers s3:// with open_target
from .targets import open_target  # noqa: E402
from .txn import Appender, Result, Status  # noqa: E402
from .txn import status as _status  # noqa: E402

__all__ = ["append", "recover", "status", "load_config", "config", "Result", "Status",
           "AppendError"]


def _read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """One append configuration file, checked (DM160 with line:column; DM002 when it
    cannot be read)."""
    from ..check import check_text

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise AppendError(f"cannot read the append configuration: {why}", code="DM002",
                          file=str(path), hint="an append configuration is a TOML file "
                          "(SCHEMA.md §26.1)") from e
    result = check_text(text, str(path), "append-config")
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors:
        d = errors[0]
        raise AppendError(d.message, code=d.code, file=str(path), line=d.line,
                          column=d.column, hint=d.hint)
    from ..spec.tomlparse import loads

    return loads(text)


def load_config(files: Iterable[str | os.PathLike] = (), **options: Any) -> AppendConfig:
    """Merge configuration files in order and then ``options`` (APP-002) into an
    :class:`~datamanifest.spec.appends.AppendConfig`. Raises AppendError (DM160)."""
    docs = [_read_config_file(f) for f in files]
    docs.append({k: v for k, v in options.items() if v is not None})
    return config(merge(docs))


def config(data: dict[str, Any]) -> AppendConfig:
    """Validate a configuration given as a dict. Raises AppendError (DM160)."""
    try:
        return config_from_dict(data)
    except AppendSpecError as e:
        raise AppendError(e.message, code=e.code,
                          hint="see SCHEMA.md §26.1 for the fields") from e


def _resolve(target: str | os.PathLike | None, cfg: AppendConfig):
    where = os.fspath(target) if target is not None else cfg.target
    if not where:
        raise AppendError("no target: pass one, or set `target` in the configuration",
                          code="DM160")
    return open_target(where, cfg.target_storage_options, durable=cfg.durable)


def append(target: str | os.PathLike | None, slices: Any, config: Any = None, *,
           slice_source: Callable[..., Any] | None = None,
           on_slice: Callable[[Result], None] | None = None,
           on_wait: Callable[[str], None] | None = None,
           **options: Any) -> list[Result]:
    """Append ``slices`` to a Zarr store, one transaction per slice, in order (SCHEMA.md §26).

    Parameters
    ----------
    target : str or PathLike, optional
        A folder or ``s3://bucket/prefix``; None: the configuration's ``target``.
    slices : object or iterable
        One slice or an iterable (a list or a generator) of slices: paths or URLs of
        NetCDF/HDF5 files or Zarr stores, or ``xarray.Dataset`` objects; with
        ``slice_source``, the arguments of that function (APP-041). A local path is waited
        for until it exists and is complete when ``slice_polling`` is set (APP-040).
    config : AppendConfig, dict, str, PathLike or list, optional
        An :class:`~datamanifest.spec.appends.AppendConfig`, a dict, a path of a TOML
        configuration or a list of paths (merged, APP-002).
    slice_source : callable or str, optional
        A function (or ``"module:function"``) making each slice from one item of
        ``slices``, called as ``slice_source(item, **slice_source_kwargs)``.
    on_slice : callable, optional
        Called with each :class:`Result` after its commit.
    on_wait : callable, optional
        Called with the lock holder's description when the lock is busy.
    **options
        Fields overriding the configuration (``append_dim="time"``, ``append_step="1D"``,
        ``zarr_format=2``, ``dry_run=True``, ``lock={"wait": False}``, ...).

    Returns
    -------
    list of Result
        One :class:`Result` per slice: ``action``, ``old_length``/``new_length`` along the
    dimension, ``txn``, ``version``, ``keys_written``, ``bytes_written`` (bytes),
    ``seconds``.

    Raises
    ------
    AppendError
        DM160..DM167 (the slice that failed left the target untouched; every earlier slice
        is committed), DM190 a slice that did not arrive within ``slice_polling.timeout``,
        DM191 a ``slice_source`` that cannot be imported or fails.
    LockTimeout
        DM131 when the lock is busy and ``wait`` is false, DM075 after ``lock.timeout`` seconds.
    """
    from . import sources

    cfg = _config(config, options)
    t = _resolve(target, cfg)
    appender = Appender(t, cfg, on_wait=on_wait)
    xr = need("xarray", **APPEND)

    source = slice_source
    if source is None and cfg.slice_source:
        source = sources.resolve_source(cfg.slice_source)
    if isinstance(source, str):
        source = sources.resolve_source(source)
    if source is None and isinstance(slices, (str, os.PathLike, xr.Dataset, xr.DataArray)):
        slices = [slices]
    elif source is not None:
        if isinstance(slices, (str, bytes, os.PathLike)) or not hasattr(slices, "__iter__"):
            slices = [slices]
        slices = sources.from_source(source, slices, cfg.slice_source_kwargs)
    polling = cfg.polling()
    results = []
    for s in slices:
        path = sources.local_path(s) if polling is not None else None
        if path is not None:
            sources.wait_for(path, polling)
        try:
            r = appender.append(s)
        except AppendError as e:  # a slice that does not fit: located at its file
            where = sources.local_path(s)
            e.located(str(where.resolve()) if where is not None else
                      os.fspath(s) if isinstance(s, (str, os.PathLike)) else "")
            raise
        results.append(r)
        if on_slice:
            on_slice(r)
    return results


def _config(config_arg: Any, options: dict[str, Any]) -> AppendConfig:
    if isinstance(config_arg, AppendConfig):
        if not options:
            return config_arg
        base = config_arg.model_dump(by_alias=True, exclude_none=True, exclude={"meta"})
        return config(merge([base, options]))
    if config_arg is None:
        return load_config((), **options)
    if isinstance(config_arg, dict):
        return config(merge([config_arg, {k: v for k, v in options.items()
                                               if v is not None}]))
    files = [config_arg] if isinstance(config_arg, (str, os.PathLike)) else list(config_arg)
    return load_config(files, **options)


def recover(target: str | os.PathLike, config: Any = None, **options: Any
            ) -> dict[str, Any] | None:
    """Repair a pending transaction of ``target`` now (APP-024): what was done
    (``{"txn", "action": "roll-back"|"roll-forward", ...}``), ``{"action": "cleaned"}`` for
    leftover temporary folders, or None when there was nothing to do."""
    cfg = _config(config, options)
    return Appender(_resolve(target, cfg), cfg).recover()


def status(target: str | os.PathLike, config: Any = None, **options: Any) -> Status:
    """The committed length along the append dimension, a pending transaction and the
    lock holder, read without taking the lock."""
    cfg = _config(config, options)
    return _status(_resolve(target, cfg), cfg)


# the spelling documented before the package was named appends: datamanifest.append.status(...)
append.status = status  # type: ignore[attr-defined]
append.recover = recover  # type: ignore[attr-defined]
append.load_config = load_config  # type: ignore[attr-defined]
