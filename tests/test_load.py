"""The load ladder and Project.load (SCHEMA.md §15, LAD-010..LAD-023)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import datamanifest
from datamanifest.errors import DataManifestError

from .conftest import write_manifest

LOADERS = '''
import json, pathlib

def upper(path):
    return pathlib.Path(path).read_text().upper()

def with_args(path, *, prefix=""):
    return prefix + pathlib.Path(path).read_text()
'''


@pytest.fixture
def lproject(project: Path, monkeypatch) -> Path:
    # the tests' own manifest runs its loader bindings: trusted as CI would (TRU-005)
    monkeypatch.setenv("DATAMANIFEST_TRUST", "1")
    (project / "myloaders.py").write_text(LOADERS)
    (project / "in").mkdir()
    (project / "in" / "a.json").write_text('{"x": [1, 2]}')
    (project / "in" / "b.toml").write_text('k = "v"\n')
    (project / "in" / "c.txt").write_text("text\n")
    (project / "in" / "d.dat").write_text("dat\n")
    (project / "in" / "e.xyz").write_text("?")
    (project / "in" / "f.csv").write_text("a,b\n1,2\n")
    write_manifest(project, (
        '[_LOADERS]\ndat = "myloaders:upper"\n\n'
        '[a]\nuri = "in/a.json"\n\n[b]\nuri = "in/b.toml"\n\n[c]\nuri = "in/c.txt"\n'
        'aliases = ["see"]\n\n'
        '[c2]\nuri = "in/c.txt"\nkey = "c2.txt"\n'
        'loader = { ref = "myloaders:with_args", args = ["$path"], kwargs = { prefix = "$key:" } }\n\n'
        '[d]\nuri = "in/d.dat"\n\n[e]\nuri = "in/e.xyz"\n\n[f]\nuri = "in/f.csv"\n'))
    return project


def test_builtin_and_binding_loaders(lproject: Path):
    m = datamanifest.open_manifest(lproject)
    assert m.load("a") == {"x": [1, 2]}  # fetched on first load
    assert m.load("b") == {"k": "v"}
    assert m.load("see") == "text\n"  # by alias
    assert m.load("c2") == "c2.txt:text\n"  # per-dataset table binding, $path and $key
    assert m.load("d") == "DAT\n"  # [_LOADERS] format default


def test_no_loader_and_missing_library(lproject: Path):
    m = datamanifest.open_manifest(lproject)
    with pytest.raises(DataManifestError) as exc:
        m.load("e")
    assert exc.value.code == "DM087"
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(DataManifestError) as exc:
            m.load("f")
        assert exc.value.code == "DM086" and "datamanifest[csv]" in exc.value.hint
    else:
        assert list(m.load("f").columns) == ["a", "b"]


def test_load_offline_does_not_fetch(lproject: Path):
    m = datamanifest.open_manifest(lproject)
    with pytest.raises(DataManifestError) as exc:
        m.load("a", offline=True)
    assert exc.value.code == "DM078"
    assert not (lproject / "store").exists()


def test_lazy_access_opens_in_place_local_and_http(http, served, project: Path, monkeypatch):
    monkeypatch.setenv("DATAMANIFEST_TRUST", "1")  # 'bound' imports the project's module
    (served / "remote.json").write_text('{"remote": true}')
    (served / "table.csv").write_text("a\n1\n")
    (project / "big.json").write_text('{"local": 1}')
    (project / "lazyloaders.py").write_text("def show(path):\n    return 'opened ' + path\n")
    write_manifest(project, (
        f'[remote]\nuri = "{http.url("remote.json")}"\nlazy_access = true\n\n'
        '[local]\nuri = "big.json"\nlazy_access = true\n\n'
        f'[bound]\nuri = "{http.url("table.csv")}"\nlazy_access = true\n'
        'loader = "lazyloaders:show"\n'))
    m = datamanifest.open_manifest(project)
    assert m.load("remote") == {"remote": True}  # through fsspec over HTTP
    assert m.load("local") == {"local": 1}  # in place, no copy
    assert m.load("bound") == f"opened {http.url('table.csv')}"  # the binding gets the URI
    assert not (project / "store").exists() and not (project / ".datamanifest").exists()
    assert http.hits["/remote.json"] >= 1


def test_path_of_a_local_lazy_dataset_is_in_place(project: Path):
    (project / "big.json").write_text("{}")
    write_manifest(project, '[local]\nuri = "big.json"\nlazy_access = true\n')
    m = datamanifest.open_manifest(project)
    assert m.path("local") == project / "big.json"
