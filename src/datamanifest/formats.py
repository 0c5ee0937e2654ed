"""The one format registry: how a data format is loaded, and stored, by every capability.

A :class:`Format` pairs a format name (a file extension) with the libraries it needs and
its functions: ``load(path)``, ``loads(bytes)`` when it can read bytes already in memory,
``save(value, path)`` when values can be stored in it. Two rules of the spec read this
table, each with its own error code for a missing library (the table is shared, the codes
are the rules'):

* the load ladder's built-in loaders (SCHEMA.md LAD-023): the formats marked ``dataset``
  (:func:`loadable`); a missing library is DM086 (:func:`load`);
* produced datasets (PRD-012): the formats with a ``save`` (:func:`producible`), to which
  :func:`register_format` adds your own; a missing library is DM114.

``pickle``, ``npy`` and ``npz`` store produced values only: a dataset's bytes come from
elsewhere and are never unpickled by the load ladder.
"""

from __future__ import annotations

import io
import json
import pickle
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataManifestError, ProduceError
from .optional import need


@dataclass(frozen=True)
class Format:
    """A data format.

    ``load(path)`` reads an entry (a file, or a folder when ``folder``); ``loads(data)``,
    when given, reads it from bytes already verified in memory (PRD-022, a lazy dataset's
    body); ``save(value, path)``, when given, writes one. ``requires`` lists ``(module,
    extra)`` pairs imported before use, ``save_requires`` those needed only to store.
    ``dataset``: a built-in loader of the load ladder (LAD-023).
    """

    name: str
    save: Callable[[Any, Path], None] | None
    load: Callable[[Path], Any]
    loads: Callable[[bytes], Any] | None = None
    folder: bool = False
    requires: tuple[tuple[str, str], ...] = ()
    dataset: bool = False
    save_requires: tuple[tuple[str, str], ...] = ()

    def require(self, *, error: type[DataManifestError], code: str, feature: str,
                storing: bool = False) -> None:
        """Import what this format needs (to store too when ``storing``), or raise ``error``
        with ``code`` naming the extra that installs it (DM086 for a loader, DM114 for a
        produced dataset)."""
        for module, extra in self.requires + (self.save_requires if storing else ()):
            need(module, extra=extra, feature=feature, error=error, code=code)

    def check_available(self) -> None:
        """Raise :class:`~datamanifest.errors.ProduceError` (DM114) when a library this
        format needs to store a produced value is not installed (PRD-012)."""
        self.require(error=ProduceError, code="DM114", feature=f"format {self.name!r}",
                     storing=True)


_REGISTRY: dict[str, Format] = {}


def _add(fmt: Format) -> Format:
    _REGISTRY[fmt.name] = fmt
    return fmt


def register_format(name: str, save: Callable[[Any, Path], None], load: Callable[[Path], Any], *,
                    loads: Callable[[bytes], Any] | None = None, folder: bool = False,
                    requires: tuple[tuple[str, str], ...] = (), replace: bool = False) -> Format:
    """Register a format produced datasets can be stored in (SCHEMA.md PRD-012).

    Parameters
    ----------
    name : str
        The format's name, a file extension (``"h5"``).
    save : callable
        ``save(value, path)``: write ``value`` at ``path`` (a file, or a folder when
        ``folder``).
    load : callable
        ``load(path)``: read the value back.
    loads : callable, optional
        ``loads(data)``: read it from bytes already in memory (a pool's verified bytes).
    folder : bool
        The entry is a folder.
    requires : tuple of (module, extra)
        Libraries imported before use; a missing one is DM114 naming the extra.
    replace : bool
        Replace a format registered under ``name``.

    Returns
    -------
    Format

    Raises
    ------
    ProduceError
        DM114 for an invalid name or, without ``replace``, a name already registered.
    """
    from .spec.cache import check_format

    try:
        check_format(name)
    except ValueError as e:
        raise ProduceError(str(e), code="DM114", hint="use a file extension such as 'h5'") from e
    if name in _REGISTRY and not replace:
        raise ProduceError(f"format {name!r} is already registered", code="DM114",
                           hint="pass replace=True to override it")
    return _add(Format(name, save, load, loads, folder, requires))


def producible(name: str) -> Format | None:
    """The registered format ``name`` when values can be stored in it, else None."""
    fmt = _REGISTRY.get(name)
    return fmt if fmt is not None and fmt.save is not None else None


def get_format(name: str) -> Format:
    """The format ``name`` produced values can be stored in (PRD-012).

    Raises
    ------
    ProduceError
        DM114 when no such format is registered.
    """
    fmt = producible(name)
    if fmt is None:
        raise ProduceError(f"unknown format {name!r}", code="DM114",
                           hint="known: " + ", ".join(formats()) +
                           "; add one with datamanifest.register_format")
    return fmt


def formats() -> list[str]:
    """The names of the formats produced values can be stored in, sorted."""
    return sorted(n for n, f in _REGISTRY.items() if f.save is not None)


def loadable() -> list[str]:
    """The formats the load ladder loads with a built-in loader (LAD-023), sorted."""
    return sorted(n for n, f in _REGISTRY.items() if f.dataset)


def dataset_format(name: str) -> Format | None:
    """The built-in loader of format ``name`` (LAD-023), or None."""
    fmt = _REGISTRY.get(name)
    return fmt if fmt is not None and fmt.dataset else None


def load(name: str, path: Path) -> Any:
    """Load a dataset's local ``path`` with the built-in loader of format ``name``.

    Raises
    ------
    DataManifestError
        DM086 when the loader's library is missing (LAD-023), naming the extra; KeyError
        for a format without a built-in loader.
    """
    fmt = _REGISTRY[name]
    if not fmt.dataset:
        raise KeyError(name)
    fmt.require(error=DataManifestError, code="DM086", feature=f"loading {name}")
    return fmt.load(path)


# -- built-ins -----------------------------------------------------------------------------------------
def _lib(module: str, extra: str) -> Any:
    """``module`` imported (its format's ``require`` has named the extra before)."""
    return need(module, extra=extra, feature="a data format")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _pickle_save(value: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)


def _pickle_load(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _json_save(value: Any, path: Path) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, allow_nan=False), encoding="utf-8")


def _toml_save(value: Any, path: Path) -> None:
    import tomli_w

    path.write_bytes(tomli_w.dumps(value).encode("utf-8"))


def _txt_save(value: Any, path: Path) -> None:
    if not isinstance(value, str):
        raise ProduceError(f"format 'txt' stores a str, not {type(value).__name__}", code="DM114",
                           hint="return a str, or choose another format")
    path.write_text(value, encoding="utf-8")


def _npy_save(value: Any, path: Path) -> None:
    np = _lib("numpy", "numpy")
    with open(path, "wb") as f:
        np.save(f, np.asarray(value), allow_pickle=False)


def _npy_load(path: Path) -> Any:
    return _lib("numpy", "numpy").load(path, allow_pickle=False)


def _npz_save(value: Any, path: Path) -> None:
    np = _lib("numpy", "numpy")
    if not isinstance(value, dict):
        raise ProduceError(f"format 'npz' stores a dict of arrays, not {type(value).__name__}",
                           code="DM114", hint="return {name: array}, or choose 'npy'")
    with open(path, "wb") as f:
        np.savez(f, **value)


def _npz_load(path: Path) -> Any:
    with _lib("numpy", "numpy").load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _csv_load(path: Path) -> Any:
    return _lib("pandas", "csv").read_csv(path)


def _csv_loads(data: bytes) -> Any:
    return _lib("pandas", "csv").read_csv(io.BytesIO(data))


def _parquet_load(path: Path) -> Any:
    return _lib("pandas", "parquet").read_parquet(path)


def _yaml_loads(data: bytes | str) -> Any:
    return _lib("yaml", "yaml").safe_load(data)


def _nc_load(path: Path) -> Any:
    return _lib("xarray", "nc").open_dataset(path)


def _zarr_save(value: Any, path: Path) -> None:
    # no consolidated metadata: zarr warns (ZarrUserWarning) that Zarr v3 does not specify
    # it, and an artifact is a local folder read whole, which needs none
    value.to_zarr(path, mode="w-", consolidated=False)


def _zarr_load(path: Path) -> Any:
    """A local Zarr store: its consolidated metadata read when it has some (v2
    ``.zmetadata``, v3 ``consolidated_metadata`` in ``zarr.json``), else none is looked for
    (no warning about its absence)."""
    path = Path(path)
    consolidated = None
    if not (path / ".zmetadata").is_file():
        try:
            root = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
            consolidated = None if root.get("consolidated_metadata") else False
        except (OSError, ValueError, AttributeError):
            consolidated = None
    return _lib("xarray", "zarr").open_zarr(path, consolidated=consolidated)


def _chunk_manifest_load(path: Path) -> Any:
    """A virtual dataset (CHK-030): its chunk manifest opened as an xarray.Dataset, read in
    place from its sources."""
    from .virtual import open_virtual

    return open_virtual(path)


_add(Format("pickle", _pickle_save, _pickle_load, loads=pickle.loads))
_add(Format("json", _json_save, lambda p: json.loads(_text(p)),
            loads=lambda b: json.loads(b.decode("utf-8")), dataset=True))
_add(Format("toml", _toml_save, lambda p: tomllib.loads(_text(p)),
            loads=lambda b: tomllib.loads(b.decode("utf-8")), dataset=True))
_add(Format("txt", _txt_save, _text, loads=lambda b: b.decode("utf-8"), dataset=True))
_add(Format("md", None, _text, loads=lambda b: b.decode("utf-8"), dataset=True))
_add(Format("npy", _npy_save, _npy_load, requires=(("numpy", "numpy"),)))
_add(Format("npz", _npz_save, _npz_load, requires=(("numpy", "numpy"),)))
_add(Format("csv", lambda value, path: value.to_csv(path, index=False), _csv_load,
            loads=_csv_loads, requires=(("pandas", "csv"),), dataset=True))
_add(Format("parquet", lambda value, path: value.to_parquet(path), _parquet_load,
            requires=(("pandas", "parquet"), ("pyarrow", "parquet")), dataset=True))
_add(Format("yaml", None, lambda p: _yaml_loads(_text(p)), loads=_yaml_loads,
            requires=(("yaml", "yaml"),), dataset=True))
_add(Format("yml", None, lambda p: _yaml_loads(_text(p)), loads=_yaml_loads,
            requires=(("yaml", "yaml"),), dataset=True))
_add(Format("nc", lambda value, path: value.to_netcdf(path), _nc_load,
            requires=(("xarray", "nc"),), dataset=True, save_requires=(("scipy", "nc"),)))
_add(Format("zarr", _zarr_save, _zarr_load, folder=True,
            requires=(("xarray", "zarr"), ("zarr", "zarr")), dataset=True))
_add(Format("chunk-manifest", None, _chunk_manifest_load,
            requires=(("xarray", "virtual"),), dataset=True))
