"""Optional dependencies: the one door through which every optional module is imported.

The base package (``pip install datamanifest``) checks manifests and fetches over HTTP
and from local paths. Every other capability needs libraries that an *extra* installs
(``pip install 'datamanifest[virtual]'``). Code never imports such a library directly:
it calls :func:`need`, which turns a missing module into :class:`MissingDependency`
(DM170, SCHEMA.md DIAG-020) naming the feature, the module and the extra to install, so a
user sees one coded line instead of a ``ModuleNotFoundError`` traceback.

``EXTRAS`` below is the table of the extras and what each installs, kept equal to
``pyproject.toml`` by a test (``tests/test_optional.py``), which also hides each module in
turn and runs every command that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import DataManifestError, MissingDependency

#: extra -> the top-level modules it makes importable (pyproject.toml [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "s3": ("boto3", "botocore"),
    "gs": ("fsspec", "gcsfs"),
    "az": ("fsspec", "adlfs"),
    "csv": ("pandas",),
    "parquet": ("pandas", "pyarrow"),
    "yaml": ("yaml",),
    "dvc": ("yaml",),
    "numpy": ("numpy",),
    "nc": ("xarray", "scipy", "h5netcdf", "cftime"),
    "zarr": ("xarray", "zarr"),
    "lazy": ("fsspec", "aiohttp"),
    "virtual": ("numpy", "xarray", "zarr", "numcodecs", "h5py", "obstore", "cftime"),
    "icechunk": ("numpy", "xarray", "zarr", "numcodecs", "h5py", "obstore", "cftime",
                 "icechunk"),
    "append": ("numpy", "pandas", "xarray", "zarr", "numcodecs", "h5py", "h5netcdf", "scipy",
               "cftime", "fsspec", "aiohttp"),
}

#: the arguments of :func:`need` for the two capabilities that use it most
VIRTUAL = {"extra": "virtual", "feature": "chunk manifests"}
APPEND = {"extra": "append", "feature": "appends"}


def need(module: str, *, extra: str, feature: str,
         error: type[DataManifestError] | None = None, code: str | None = None) -> ModuleType:
    """Import ``module`` (dotted names allowed) or raise the coded error naming ``extra``.

    Parameters
    ----------
    module:
        The module to import, e.g. ``"xarray"`` or ``"zarr.core.dtype"``.
    extra:
        The extra of ``pyproject.toml`` that installs it (a key of :data:`EXTRAS`).
    feature:
        What the caller is doing, in the user's words (``"virtualize"``).
    error, code:
        Where a rule of its own names another code for this case (a loader's library,
        LAD-023 DM086; a produced dataset's format, PRD-012 DM114), the error class and
        code to raise instead of :class:`MissingDependency`.

    Returns
    -------
    The imported module.

    Raises
    ------
    MissingDependency
        DM170 (SCHEMA.md DIAG-020) when the module, or a module it imports, is missing;
        ``err.module`` is the missing module's top-level name, ``err.extra`` the extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = (getattr(err, "name", None) or module).partition(".")[0]
        top = module.partition(".")[0]
        what = missing if missing == top else f"{top} (it needs {missing})"
        message = f"{feature}: needs {what}, which is not installed"
        hint = f"pip install 'datamanifest[{extra}]'"
        if error is not None:
            raise error(message, code=code, hint=hint) from err
        raise MissingDependency(message, module=missing, extra=extra, hint=hint) from err
