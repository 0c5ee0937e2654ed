"""Optional dependencies (SCHEMA.md DIAG-020): every optional import goes through
``datamanifest.optional.need``; with a module missing, each site and each command that needs
it ends in DM170 naming an extra that really installs it, never in a traceback."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from datamanifest.errors import DataManifestError, MissingDependency
from datamanifest.optional import EXTRAS, need

from .conftest import ROOT, write_manifest

SRC = ROOT / "src" / "datamanifest"
#: distribution name -> top-level module, where the two differ
DIST_MODULE = {"pyyaml": ("yaml",), "boto3": ("boto3", "botocore")}
OPTIONAL = {m for mods in EXTRAS.values() for m in mods}
#: module-level imports of optional modules, allowed because the package's __init__ calls
#: need() for that module before importing any of its modules (or imports them lazily)
GUARDED = {"datamanifest.virtual": {"numpy"}, "datamanifest.appends": {"numpy"},
           "datamanifest.virtual.zarrstore": {"zarr"}}


def _pyproject_extras() -> dict[str, set[str]]:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]

    def modules(extra: str) -> set[str]:
        out: set[str] = set()
        for req in declared[extra]:
            m = re.match(r"([A-Za-z0-9_.-]+)(?:\[([^\]]+)\])?", req)
            name, sub = m.group(1).lower(), m.group(2)
            if name == "datamanifest":
                for e in sub.split(","):
                    out |= modules(e.strip())
            else:
                out.update(DIST_MODULE.get(name, (name.replace("-", "_"),)))
        return out

    return {extra: modules(extra) for extra in declared}


def test_the_table_of_extras_is_pyprojects():
    declared = _pyproject_extras()
    for extra, mods in EXTRAS.items():
        assert set(mods) == declared[extra], extra
    features = set(declared) - {"test", "bench", "demo", "all", "docs"}
    assert features == set(EXTRAS)
    assert declared["all"] == set().union(*(set(m) for m in EXTRAS.values()))


def _imports(path: Path):
    """(module-level?, imported top-level name, line) of every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield id(node) in top_level, name.partition(".")[0], node.lineno


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_optional_module_is_imported_around_the_door():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "optional.py":
            continue
        module = _module_name(path)
        for at_top, name, line in _imports(path):
            if name not in OPTIONAL:
                continue
            guarded = any((module == pkg or module.startswith(pkg + ".")) and name in mods
                          for pkg, mods in GUARDED.items())
            if not guarded:  # inside a guarded package, any import of a guarded module is safe
                wrong.append(f"{path.relative_to(ROOT)}:{line}: import {name}")
    assert not wrong, "use datamanifest.optional.need:\n" + "\n".join(wrong)


def _need_sites():
    """Every need(...) call in src/ with constant arguments: (where, module, extra)."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        consts: dict[str, dict] = {}
        for node in tree.body:  # module constants such as ICECHUNK = {"extra": ...}
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                try:
                    consts[node.targets[0].id] = ast.literal_eval(node.value)
                except (ValueError, AttributeError):
                    pass
        from datamanifest import optional

        consts.update(VIRTUAL=optional.VIRTUAL, APPEND=optional.APPEND)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                    "need", "_need", "_lib")):
                continue
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            kw = {}
            for k in node.keywords:
                if k.arg is None and isinstance(k.value, ast.Name):
                    kw.update(consts.get(k.value.id, {}))
                elif isinstance(k.value, ast.Constant):
                    kw[k.arg] = k.value.value
            if node.func.id == "need" and args and kw.get("extra"):
                module, extra = args[0], kw.get("extra")
            elif node.func.id in ("_need", "_lib") and len(args) >= 2:
                module, extra = args[0], args[1]
            else:
                continue  # a helper's own body: need(module, extra=extra, ...)
            yield f"{path.relative_to(ROOT)}:{node.lineno}", module, extra


SITES = list(_need_sites())


def test_the_sites_are_found():
    assert len(SITES) > 40


def test_object_store_schemes_name_extras_that_install_their_packages():
    from datamanifest.io.objects import FSSPEC_SCHEMES

    declared = _pyproject_extras()
    for scheme, (extra, package) in FSSPEC_SCHEMES.items():
        assert {"fsspec", package} <= declared[extra], scheme


@pytest.mark.covers("DIAG-020")
@pytest.mark.parametrize("where,module,extra", SITES, ids=[s[0] for s in SITES])
def test_each_site_names_an_extra_that_installs_its_module(where, module, extra, monkeypatch):
    top = module.partition(".")[0]
    declared = _pyproject_extras()
    assert extra in declared, f"{where}: no extra {extra!r}"
    assert top in declared[extra], f"{where}: [{extra}] does not install {top}"
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, top, None)
    with pytest.raises(DataManifestError) as e:
        need(module, extra=extra, feature="this test")
    assert e.value.code == "DM170" and isinstance(e.value, MissingDependency)
    assert f"datamanifest[{extra}]" in e.value.hint and top in e.value.message
    assert isinstance(e.value.__cause__, ImportError)


def test_a_module_that_cannot_import_its_own_dependency_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpy", None)
    for name in [n for n in sys.modules if n == "h5py" or n.startswith("h5py.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingDependency) as e:
        need("h5py", extra="virtual", feature="virtualize")
    assert e.value.module == "numpy"
    assert e.value.message == "virtualize: needs h5py (it needs numpy), which is not installed"


# -- commands, each run as a user would with one module missing ----------------------------------
_HIDE = """
import importlib.machinery, sys
def hidden(name):
    return any(name == m or name.startswith(m + ".") for m in HIDDEN)
class _Absent(importlib.machinery.PathFinder):  # as if never installed: find_spec gives None
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if hidden(name) else super().find_spec(name, path, target)
sys.meta_path[:] = [_Absent if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
for n in [n for n in sys.modules if hidden(n)]:
    del sys.modules[n]
from datamanifest.cli import main
sys.argv = ["datamanifest", *ARGS]
main()
"""


def _run_hidden(hidden: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = f"HIDDEN = {hidden!r}\nARGS = {args!r}\n" + _HIDE
    env = dict(os.environ, DATAMANIFEST_TRUST="1")
    env.pop("DATAMANIFEST_TOML", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


def _netcdf4(path: Path) -> Path:
    import numpy as np
    import xarray as xr

    xr.Dataset({"t": (("time",), np.arange(4.0))}, coords={"time": np.arange(4)}).to_netcdf(
        path, engine="h5netcdf")
    return path


COMMANDS = [
    # (hidden modules, arguments, extra the message must name)
    (["h5py"], ["virtualize", "{nc}", "-o", "v.json"], "virtual"),
    (["numpy"], ["virtualize", "{nc}", "-o", "v.json"], "virtual"),
    (["pyarrow"], ["virtualize", "{nc}", "-o", "kp", "--format", "kerchunk-parquet"], "parquet"),
    (["icechunk"], ["virtualize", "{nc}", "-o", "ic", "--format", "icechunk"], "icechunk"),
    (["xarray"], ["append", "cube.zarr", "{nc}"], "append"),
    (["numpy"], ["append", "cube.zarr", "{nc}"], "append"),
    (["zarr"], ["append", "cube.zarr", "{nc}"], "append"),
    (["boto3"], ["tree", "s3://bucket/prefix"], "s3"),
    (["boto3"], ["fetch", "s3obj"], "s3"),
    (["gcsfs"], ["fetch", "gsobj"], "gs"),
    (["adlfs"], ["fetch", "azobj"], "az"),
    (["yaml"], ["import", "dvc", "data.dvc"], "dvc"),
]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


@pytest.mark.covers("DIAG-020")
@pytest.mark.parametrize("hidden,args,extra", COMMANDS,
                         ids=[f"{h[0]}-{a[0]}-{e}" for h, a, e in COMMANDS])
def test_a_command_without_its_extra_says_what_to_install(tmp_path, hidden, args, extra):
    nc = _netcdf4(tmp_path / "day.nc")
    write_manifest(tmp_path, '[s3obj]\nuri = "s3://bucket/s3.csv"\n\n'
                   '[gsobj]\nuri = "gs://bucket/gs.csv"\n\n[azobj]\nuri = "az://bucket/az.csv"\n')
    (tmp_path / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef\n"
                                       "  path: data.csv\n")
    before = _files(tmp_path)
    proc = _run_hidden(hidden, [a.format(nc=nc) for a in args], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "ModuleNotFoundError" not in proc.stderr
    assert "DM170" in proc.stderr and f"pip install 'datamanifest[{extra}]'" in proc.stderr, \
        proc.stderr
    assert _files(tmp_path) == before  # nothing written


def test_the_python_api_raises_the_coded_error(tmp_path):
    import datamanifest
    from datamanifest.virtual import document

    refs = tmp_path / "day.chunks.json"
    document.write(datamanifest.virtualize([_netcdf4(tmp_path / "day.nc")]), refs)
    code = ("import sys; sys.modules['xarray'] = None\n"
            "import datamanifest, json\n"
            f"try:\n    datamanifest.open_virtual({str(refs)!r})\n"
            "except datamanifest.DataManifestError as e:\n"
            "    print(json.dumps([e.code, e.hint]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert json.loads(proc.stdout) == ["DM170", "pip install 'datamanifest[virtual]'"], \
        proc.stderr
