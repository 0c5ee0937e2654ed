"""Secrets stay secret (SCHEMA.md §27.2, SEC-001..SEC-003, FET-013): a credential written
into a URI is used for the request and never shown: not in messages, JSON outputs, log
lines, progress labels, the state file, resume records or any other file the tool writes;
`check` warns about it and says where it belongs instead.

Real processes and a real loopback HTTP server that requires basic authentication."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from .conftest import run_cli, sha256_of, write_manifest

SECRET = "s3cret"


def _authed(http, served: Path, name: str, data: bytes) -> str:
    """Serve ``name`` only to alice:s3cret; returns its URL with the credential in it."""
    (served / name).write_bytes(data)
    http.auth[f"/{name}"] = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    return http.url(name).replace("http://", f"http://alice:{SECRET}@")


def _written(*roots: Path, skip: tuple[Path, ...] = ()) -> dict[str, bytes]:
    """Every file the tool may have written below ``roots`` (the manifest excepted)."""
    out = {}
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and p not in skip:
                out[str(p)] = p.read_bytes()
    return out


@pytest.mark.covers("SEC-002", "FET-013")
def test_the_credential_is_used_and_appears_nowhere(http, served, project: Path,
                                                    tmp_path: Path, monkeypatch):
    # a netrc file for another host must not keep the URI's own credential from being sent
    netrc = tmp_path / "netrc"
    netrc.write_text("machine other.example.org login bob password nope\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    data = b"protected\n" * 50
    url = _authed(http, served, "p.csv", data)
    write_manifest(project, f'[p]\nuri = "{url}"\n')
    proc = run_cli("fetch", "--json", cwd=project, env={"DATAMANIFEST_DEBUG": "1"})
    assert proc.returncode == 0, proc.stderr
    assert (project / "store" / "127.0.0.1" / "p.csv").read_bytes() == data  # credential used
    assert SECRET not in proc.stdout and SECRET not in proc.stderr  # debug logs included
    state = (project / ".datamanifest" / "state.toml").read_text()
    assert "alice:****@127.0.0.1" in state
    for args in (["status", "--json"], ["show", "p", "--json"], ["show", "p"],
                 ["fetch", "--dry-run", "--json", "--force"], ["fetch", "--dry-run"],
                 ["list", "--json"], ["check", "--format", "json"], ["trust", "--show"]):
        out = run_cli(*args, cwd=project)
        assert SECRET not in out.stdout + out.stderr, args
    assert run_cli("trust", cwd=project).returncode == 0
    files = _written(project, tmp_path / "config", skip=(project / "datamanifest.toml",))
    assert files and not [f for f, b in files.items() if SECRET.encode() in b]
    assert SECRET in (project / "datamanifest.toml").read_text()  # the user's own document


def test_error_messages_and_json_are_redacted(http, served, project: Path):
    bad = http.url("missing.txt").replace("http://", f"http://alice:{SECRET}@")
    write_manifest(project, f'[m]\nuri = "{bad}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM074" in proc.stderr
    assert SECRET not in proc.stderr and "alice:****@127.0.0.1" in proc.stderr
    proc = run_cli("fetch", "--json", cwd=project)
    assert SECRET not in proc.stdout + proc.stderr and "alice:****@" in proc.stdout


def test_a_token_query_is_redacted_in_a_resume_record_and_messages(http, served,
                                                                   project: Path):
    data = os.urandom(600_000)
    (served / "big.bin").write_bytes(data)
    url = http.url("big.bin") + "?X-Amz-Signature=deadbeefcafe&X-Amz-Date=20260101"
    http.cut["/big.bin"] = 200_000
    write_manifest(project, f'[big]\nuri = "{url}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM071" in proc.stderr
    assert "deadbeefcafe" not in proc.stderr and "X-Amz-Signature=****" in proc.stderr
    resume = list((project / ".datamanifest" / "resume").glob("*.json"))
    assert resume and "deadbeefcafe" not in resume[0].read_text()
    del http.cut["/big.bin"]
    proc = run_cli("fetch", cwd=project)  # the redacted record still resumes the download
    assert proc.returncode == 0, proc.stderr
    assert http.ranges["/big.bin"] == 1
    assert (project / "store").rglob("big.bin")


@pytest.mark.covers("SEC-003")
def test_check_warns_and_names_where_credentials_belong(project: Path):
    write_manifest(project, (
        f'[a]\nuri = "https://alice:{SECRET}@h.example.org/a.csv"\n\n'
        '[b]\nuris = ["https://acct.blob.core.windows.net/c/b.nc?sv=1&sig=AbC"]\n\n'
        '[c]\nuri = "s3://bucket/c.nc?token=xyz"\n\n'
        '[ok]\nuri = "ssh://alice@hpc.example.org/data/x.nc"\n'))
    proc = run_cli("check", "--format", "json", cwd=project)
    assert proc.returncode == 0, proc.stdout  # warnings only
    diags = [d for d in json.loads(proc.stdout) if d["code"] == "DM183"]
    assert [d["path"][0] for d in diags] == ["a", "b", "c"]
    assert all(d["severity"] == "warning" and d["rule"] == "SEC-003" for d in diags)
    assert "netrc" in diags[0]["hint"] and "AWS" in diags[2]["hint"]
    assert SECRET not in proc.stdout and "AbC" not in proc.stdout
    assert run_cli("check", "--strict", cwd=project).returncode == 1


def test_a_project_config_with_a_credential_is_warned(project: Path):
    write_manifest(project, '[a]\nuri = "https://h.example.org/a.csv"\n')
    (project / ".datamanifest").mkdir()
    conf = project / ".datamanifest" / "config.toml"
    conf.write_text(f'default_remote = "https://bob:{SECRET}@store.example.org/x"\n')
    proc = run_cli("check", str(conf))
    assert "DM183" in proc.stdout and SECRET not in proc.stdout


def test_add_writes_the_uri_it_was_given_and_shows_it_redacted(http, served, project: Path):
    url = _authed(http, served, "n.csv", b"n\n")
    write_manifest(project, "")
    proc = run_cli("add", url, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr and "DM183" in proc.stderr
    assert url in (project / "datamanifest.toml").read_text()
    out = run_cli("add", url, "--json", cwd=project)  # already declared: DM033, redacted
    assert SECRET not in out.stdout + out.stderr


def test_a_lazy_remote_dataset_is_listed_redacted(project: Path):
    write_manifest(project, f'[l]\nuri = "https://u:{SECRET}@h.example.org/l.nc"\n'
                            'lazy_access = true\n')
    for args in (["status", "--json"], ["list", "--json"], ["show", "l", "--json"]):
        out = run_cli(*args, cwd=project)
        assert out.returncode == 0, (args, out.stderr)
        assert SECRET not in out.stdout + out.stderr and "u:****@" in out.stdout, args


def test_a_virtual_datasets_chunk_manifest_holds_no_credential(http, served, project: Path):
    """The chunk manifest of a virtual dataset (CHK-030) records its sources redacted; the
    dataset still loads, the credential taken from the manifest (SEC-002)."""
    import shutil

    pytest.importorskip("xarray")
    import xarray as xr

    from datamanifest import open_manifest

    from . import realdata as rd

    drb = rd.wheel_files(rd.PYWATERSHED, "pywatershed/data/drb_2yr")
    shutil.copy(drb / "tmax.nc", served / "tmax.nc")
    url = _authed(http, served, "tmax.nc", (served / "tmax.nc").read_bytes())
    write_manifest(project, f'[tmax]\nuri = "{url}"\nvirtual = true\n')
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    doc = Path(json.loads(proc.stdout)["datasets"][0]["path"])
    text = doc.read_text()
    assert SECRET not in text and "alice:****@" in text
    assert run_cli("check", str(doc)).returncode == 0  # its checksum covers what it holds
    ds = open_manifest(project).load("tmax")
    xr.testing.assert_identical(ds.load(), xr.open_dataset(drb / "tmax.nc").load())
    r = run_cli("verify", "tmax", cwd=project)  # its sources are checked with the credential
    assert r.returncode == 0, r.stdout + r.stderr
    assert SECRET not in r.stdout + r.stderr


@pytest.mark.covers("SEC-002")
def test_verbose_notes_are_redacted(http, served, project: Path, tmp_path: Path,
                                    monkeypatch):
    """`fetch --verbose` shows the `datamanifest` log (silent waits and the notes of code
    that logs below it, such as a fetcher binding): every line redacted, as the library
    logs are."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    url = _authed(http, served, "slow.csv", b"slow\n")
    http.delay["/slow.csv"] = 2
    (project / "noisy.py").write_text(
        "import logging, pathlib\n"
        "def get(path):\n"
        f"    logging.getLogger('datamanifest.noisy').info('from {url}?token=tok123')\n"
        "    pathlib.Path(path).write_text('n')\n")
    write_manifest(project, f'[slow]\nuri = "{url}"\n\n[n]\nkey = "n.txt"\nfetcher = "noisy:get"\n')
    proc = run_cli("fetch", "--verbose", "--trust", cwd=project,
                   env={"DATAMANIFEST_PATIENCE": "0.5", "PYTHONPATH": os.pathsep.join(
                       [str(project), os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 0, proc.stderr
    assert "note: waiting" in proc.stderr and "alice:****@127.0.0.1" in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout and "tok123" not in proc.stderr


def test_progress_notes_and_labels_are_redacted():
    """On a terminal the notes and bars are rich's: redacted too (SEC-002)."""
    from datamanifest.progress import RichProgress

    p = RichProgress()
    try:
        with p.console.capture() as cap:
            p.note(f"waiting for https://alice:{SECRET}@h.example.org/x [id]")
            task = p.start(f"https://h.example.org/x?sig={SECRET}", 10)
            label = p.rp.tasks[-1].description
            p.finish(task)
    finally:
        p.close()
    assert SECRET not in cap.get() + label and "alice:****@" in cap.get()
    assert "[id]" in cap.get()  # text, not markup
