"""The formats a produced dataset can be stored in: saver/loader pairs (SCHEMA.md PRD-012).

Built in: ``pickle`` (the default), ``json``, ``toml``, ``txt``, ``npy`` and ``npz``
(numpy), ``csv`` and ``parquet`` (pandas), ``nc`` and ``zarr`` (xarray). A format
whose library is missing raises DM114 naming the extra that adds it
(``pip install 'datamanifest[nc]'``). Register your own with :func:`register_format`.
"""

from __future__ import annotations

import json
import pickle
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProduceError
from ..optional import need
from ..spec.cache import check_format


@dataclass(frozen=True)
class Format:
    """A way to store a value.

    ``save(value, path)`` writes the data entry at ``path`` (a file, or a folder when
    ``folder``); ``load(path)`` reads it back. ``loads(data)``, when given, reads the
    entry from bytes already verified in memory (PRD-022: a pool's bytes are checked,
    then deserialized from the same buffer). ``requires`` lists ``(module, extra)``
    pairs checked before use.
    """

    name: str
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]
    loads: Callable[[bytes], Any] | None = None
    folder: bool = False
    requires: tuple[tuple[str, str], ...] = ()

    def check_available(self) -> None:
        """Raise DM114 when a library this format needs is not installed."""
        for module, extra in self.requires:
            _lib(module, extra, f"format {self.name!r}")


_REGISTRY: dict[str, Format] = {}


def _lib(module: str, extra: str, feature: str = "produced datasets"):
    """``module`` imported, or DM114 naming the extra (PRD-012; datamanifest.optional)."""
    return need(module, extra=extra, feature=feature, error=ProduceError, code="DM114")


def register_format(name: str, save: Callable[[Any, Path], None], load: Callable[[Path], Any], *,
                    loads: Callable[[bytes], Any] | None = None, folder: bool = False,
                    requires: tuple[tuple[str, str], ...] = (), replace: bool = False) -> Format:
    """Register a format under ``name`` (a file extension, PRD-012) and return it.

    Raises :class:`~datamanifest.errors.ProduceError` (DM114) for an invalid name or,
    without ``replace``, a name already registered.
    """
    try:
        check_format(name)
    except ValueError as e:
        raise ProduceError(str(e), code="DM114", hint="use a file extension such as 'h5'") from e
    if name in _REGISTRY and not replace:
        raise ProduceError(f"format {name!r} is already registered", code="DM114",
                           hint="pass replace=True to override it")
    fmt = Format(name, save, load, loads, folder, requires)
    _REGISTRY[name] = fmt
    return fmt


def get_format(name: str) -> Format:
    """The registered format ``name``; DM114 when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ProduceError(f"unknown format {name!r}", code="DM114",
                           hint="known: " + ", ".join(sorted(_REGISTRY)) +
                           "; add one with datamanifest.register_format") from None


def formats() -> list[str]:
    """The names of every registered format, sorted."""
    return sorted(_REGISTRY)


# -- built-ins -----------------------------------------------------------------------------------------
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
    np = _lib("numpy", "numpy")
    return np.load(path, allow_pickle=False)


def _npz_save(value: Any, path: Path) -> None:
    np = _lib("numpy", "numpy")
    if not isinstance(value, dict):
        raise ProduceError(f"format 'npz' stores a dict of arrays, not {type(value).__name__}",
                           code="DM114", hint="return {name: array}, or choose 'npy'")
    with open(path, "wb") as f:
        np.savez(f, **value)


def _npz_load(path: Path) -> Any:
    np = _lib("numpy", "numpy")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _csv_save(value: Any, path: Path) -> None:
    value.to_csv(path, index=False)


def _csv_load(path: Path) -> Any:
    pd = _lib("pandas", "csv")
    return pd.read_csv(path)


def _parquet_save(value: Any, path: Path) -> None:
    value.to_parquet(path)


def _parquet_load(path: Path) -> Any:
    pd = _lib("pandas", "csv")
    return pd.read_parquet(path)


def _nc_save(value: Any, path: Path) -> None:
    value.to_netcdf(path)


def _nc_load(path: Path) -> Any:
    return _lib("xarray", "nc").open_dataset(path)


def _zarr_save(value: Any, path: Path) -> None:
    # no consolidated metadata: zarr warns (ZarrUserWarning) that Zarr v3 does not specify
    # it, and an artifact is a local folder read whole, which needs none
    value.to_zarr(path, mode="w-", consolidated=False)


def _zarr_load(path: Path) -> Any:
    return _lib("xarray", "zarr").open_zarr(path, consolidated=False)


register_format("pickle", _pickle_save, _pickle_load, loads=pickle.loads)
register_format("json", _json_save, lambda p: json.loads(p.read_text(encoding="utf-8")),
                loads=lambda b: json.loads(b.decode("utf-8")))
register_format("toml", _toml_save, lambda p: tomllib.loads(p.read_text(encoding="utf-8")),
                loads=lambda b: tomllib.loads(b.decode("utf-8")))
register_format("txt", _txt_save, lambda p: p.read_text(encoding="utf-8"),
                loads=lambda b: b.decode("utf-8"))
register_format("npy", _npy_save, _npy_load, requires=(("numpy", "numpy"),))
register_format("npz", _npz_save, _npz_load, requires=(("numpy", "numpy"),))
register_format("csv", _csv_save, _csv_load, requires=(("pandas", "csv"),))
register_format("parquet", _parquet_save, _parquet_load,
                requires=(("pandas", "parquet"), ("pyarrow", "parquet")))
register_format("nc", _nc_save, _nc_load, requires=(("xarray", "nc"), ("scipy", "nc")))
register_format("zarr", _zarr_save, _zarr_load, folder=True,
                requires=(("xarray", "zarr"), ("zarr", "zarr")))
