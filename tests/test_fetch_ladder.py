"""The fetch ladder executed: Python bindings in-process, shell templates as argv (LAD-020)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli, sha256_of, write_manifest

FETCHERS = '''
import pathlib

def get(download_path):
    pathlib.Path(download_path).write_text("from a python fetcher\\n")

def with_args(uri, download_path, *, repeat=1, label=""):
    pathlib.Path(download_path).write_text((label + uri + "\\n") * repeat)

def folder(download_path):
    p = pathlib.Path(download_path)
    (p / "sub").mkdir(parents=True)
    (p / "sub" / "a.txt").write_text("a")

def broken(download_path):
    raise RuntimeError("upstream said no")

def lazy(download_path):
    pass
'''


@pytest.fixture
def fproject(project: Path, monkeypatch) -> Path:
    (project / "myfetchers.py").write_text(FETCHERS)
    # these manifests are the tests' own: trusted as a CI job trusts its project (TRU-005)
    monkeypatch.setenv("DATAMANIFEST_TRUST", "1")
    return project


def _out(proc) -> dict:
    return {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}


@pytest.mark.covers("LAD-021")
def test_python_fetchers_string_and_table_forms(fproject: Path):
    write_manifest(fproject, (
        '[plain]\nfetcher = "myfetchers:get"\nkey = "local/plain.txt"\n\n'
        '[table]\nuri = "https://h.example.org/a b;c.csv"\nkey = "local/table.txt"\n'
        'fetcher = { ref = "myfetchers:with_args", args = ["$uri", "$download_path"], '
        'kwargs = { repeat = 2, label = "$key=" } }\n\n'
        '[tree]\nfetcher = "myfetchers:folder"\nkey = "local/tree"\n'))
    proc = run_cli("fetch", "--json", cwd=fproject)
    assert proc.returncode == 0, proc.stderr
    out = _out(proc)
    plain = fproject / "store" / "local" / "plain.txt"
    assert plain.read_text() == "from a python fetcher\n"
    assert out["plain"]["checksum"] == "sha256:" + sha256_of(b"from a python fetcher\n")
    table = (fproject / "store" / "local" / "table.txt").read_text()
    assert table == "local/table.txt=https://h.example.org/a b;c.csv\n" * 2
    assert out["tree"]["checksum"].startswith("tree-sha256:")
    assert (fproject / "store" / "local" / "tree" / "sub" / "a.txt").read_text() == "a"
    # checksums were auto-filled, and a second fetch does nothing
    text = (fproject / "datamanifest.toml").read_text()
    assert text.count('checksum = "') == 3
    again = _out(run_cli("fetch", "--json", cwd=fproject))
    assert {d["status"] for d in again.values()} == {"present"}


def test_shell_fetcher_gets_one_argument_per_value(fproject: Path):
    write_manifest(fproject, (
        '[a]\nuri = "https://h.example.org/x y;rm -rf ~"\nkey = "sh/a.txt"\n'
        'shell = "sh -c \'printf %s \\"$0\\" > \\"$1\\"\' $uri $download_path"\n\n'
        '[b]\nkey = "sh/b.txt"\nrequires = ["a"]\n'
        'shell = "cp $path_a $download_path"\n'))
    proc = run_cli("fetch", cwd=fproject)
    assert proc.returncode == 0, proc.stderr
    assert (fproject / "store" / "sh" / "a.txt").read_text() == "https://h.example.org/x y;rm -rf ~"
    assert (fproject / "store" / "sh" / "b.txt").read_text() == "https://h.example.org/x y;rm -rf ~"


@pytest.mark.covers("LAD-020")
@pytest.mark.parametrize("fetcher,code", [
    ('fetcher = "myfetchers:broken"', "DM083"),
    ('fetcher = "myfetchers:lazy"', "DM084"),
    ('fetcher = "no_such_module:get"', "DM082"),
    ('shell = "sh -c \'exit 3\'"', "DM083"),
    ('shell = "curl $nope"', "DM101"),
])
def test_failing_fetchers_publish_nothing(fproject: Path, fetcher: str, code: str):
    write_manifest(fproject, f'[x]\nkey = "f/x.txt"\n{fetcher}\n')
    proc = run_cli("fetch", cwd=fproject)
    assert proc.returncode == 1 and code in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    store = fproject / "store"
    assert not store.exists() or not [p for p in store.rglob("*") if p.is_file()]


def test_fetcher_output_is_verified(fproject: Path):
    write_manifest(fproject, f'[x]\nkey = "f/x.txt"\nfetcher = "myfetchers:get"\n'
                             f'checksum = "sha256:{"0" * 64}"\n')
    proc = run_cli("fetch", cwd=fproject)
    assert proc.returncode == 1 and "DM070" in proc.stderr
    assert not (fproject / "store" / "f" / "x.txt").exists()


def test_legacy_lang_shell_template_runs(fproject: Path):
    write_manifest(fproject, '[old]\nkey = "legacy/old.txt"\n\n[old._LANG.shell]\n'
                             'fetcher = "sh -c \'echo legacy > \\"$0\\"\' $download_path"\n')
    proc = run_cli("fetch", cwd=fproject)
    assert proc.returncode == 0, proc.stderr
    assert (fproject / "store" / "legacy" / "old.txt").read_text() == "legacy\n"


def test_foreign_only_fetcher_without_peer_is_a_clear_error(fproject: Path):
    write_manifest(fproject, '[j]\nkey = "j/data"\n\n[j._LANG.julia]\nfetcher = "Fetch:get"\n')
    proc = run_cli("fetch", cwd=fproject)
    assert proc.returncode == 1 and "DM079" in proc.stderr and "peer" in proc.stderr


PEER = '''#!/usr/bin/env python3
import sys, pathlib, tomllib
args = sys.argv[1:]
if args == ["--version"]:
    print("datamanifest-julia 0.0 (test peer)"); sys.exit(0)
assert args[0] == "fetch"
name = args[1]
toml = pathlib.Path(args[args.index("--datasets-toml") + 1])
folder = pathlib.Path(args[args.index("--datasets-folder") + 1])
key = tomllib.loads(toml.read_text())[name]["key"]
out = folder / key
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("written by the julia peer\\n")
'''


def test_delegation_runs_a_probed_peer_and_verifies(fproject: Path, tmp_path: Path):
    import os

    bindir = tmp_path / "bin"
    bindir.mkdir()
    peer = bindir / "datamanifest-julia"
    peer.write_text(PEER)
    peer.chmod(0o755)
    write_manifest(fproject, '[j]\nkey = "j/data.txt"\n\n[j._LANG.julia]\nfetcher = "Fetch:get"\n')
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    proc = run_cli("fetch", "--json", cwd=fproject, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["datasets"][0]
    assert out["status"] == "fetched"
    assert out["checksum"] == "sha256:" + sha256_of(b"written by the julia peer\n")
    assert (fproject / "store" / "j" / "data.txt.complete").exists()
    # a wrong declared checksum is caught after the peer ran
    text = (fproject / "datamanifest.toml").read_text().replace(out["checksum"], "sha256:" + "0" * 64)
    (fproject / "datamanifest.toml").write_text(text)
    proc = run_cli("fetch", "--force", cwd=fproject, env=env)
    assert proc.returncode == 1 and "DM070" in proc.stderr
    assert not (fproject / "store" / "j" / "data.txt.complete").exists()  # reads as incomplete
