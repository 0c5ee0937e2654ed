"""Trust, like direnv's `allow` (SCHEMA.md §27.1): a manifest's code runs, and locations it
sets outside the project are used, only once the user trusted exactly that content.

Real processes (`python -m datamanifest`), a real loopback HTTP server, the trust records
in a configuration folder of the test's own (XDG_CONFIG_HOME)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from datamanifest import schemas

from .conftest import run_cli, sha256_of, write_manifest

SHELL = 'shell = "sh -c \\"touch ../PWNED; echo hi > $download_path\\""\n'


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch) -> Path:
    """The user's configuration folder of this test (trust records go below it)."""
    d = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(d))
    monkeypatch.delenv("DATAMANIFEST_TRUST", raising=False)
    return d


def _records(cfg: Path) -> list[Path]:
    return sorted((cfg / "datamanifest" / "trust").glob("*.json"))


@pytest.mark.covers("TRU-005", "TRU-004")
def test_untrusted_shell_runs_nothing_and_says_what_would_run(project: Path, cfg: Path):
    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    check = run_cli("check", cwd=project)
    assert check.returncode == 0 and "info DM181" in check.stdout  # information, not a fault
    assert ":9:9: info DM181 dataset 'x' shell" in check.stdout
    assert run_cli("check", "--strict", cwd=project).returncode == 0
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert not (project.parent / "PWNED").exists()
    assert not (project / "store").exists()
    # one located line per entry, then the error with the three ways to trust
    assert f"{project / 'datamanifest.toml'}:9:9: error DM180 dataset 'x': runs the command" \
        in proc.stderr
    assert "datamanifest trust" in proc.stderr and "--trust" in proc.stderr
    assert "DATAMANIFEST_TRUST=1" in proc.stderr and "never trusted" in proc.stderr
    assert _records(cfg) == []


@pytest.mark.covers("TRU-006", "TRU-003")
def test_trust_records_the_digest_and_a_change_revokes_it(project: Path, cfg: Path):
    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    show = run_cli("trust", "--show", cwd=project)
    assert show.returncode == 1 and "NOT trusted" in show.stderr and "shell" in show.stdout
    trusted = run_cli("trust", cwd=project)
    assert trusted.returncode == 0, trusted.stderr
    [record] = _records(cfg)
    rec = json.loads(record.read_text())
    assert not list(schemas.validator("trust-record").iter_errors(rec))
    assert rec["manifest"] == (project / "datamanifest.toml").resolve().as_posix()
    status = json.loads(run_cli("trust", "--show", "--json", cwd=project).stdout)
    assert status["trusted"] and status["how"] == "record" and status["digest"] == rec["digest"]
    assert run_cli("fetch", cwd=project).returncode == 0
    assert (project.parent / "PWNED").exists()  # trusted: the manifest's command ran
    (project.parent / "PWNED").unlink()
    # the checksum fetch filled in is not trust-relevant: still trusted
    assert "checksum" in (project / "datamanifest.toml").read_text()
    assert run_cli("trust", "--show", cwd=project).returncode == 0
    # any change of the command revokes it, and the refusal says what changed
    text = (project / "datamanifest.toml").read_text().replace("echo hi", "echo ho")
    (project / "datamanifest.toml").write_text(text.replace(
        '\nchecksum = "sha256:' + sha256_of(b"hi\n") + '"', ""))
    assert run_cli("fetch", cwd=project).returncode == 0  # present: nothing would run
    proc = run_cli("fetch", "--force", cwd=project)
    assert proc.returncode == 1 and "DM180" in proc.stderr
    assert "changed since you trusted it" in proc.stderr and "changed dataset 'x' shell" in \
        proc.stderr
    assert not (project.parent / "PWNED").exists()
    revoked = run_cli("trust", "--revoke", cwd=project)
    assert revoked.returncode == 0 and _records(cfg) == []


@pytest.mark.covers("TRU-005")
def test_the_two_escapes_trust_one_run_only(project: Path, cfg: Path):
    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    assert run_cli("fetch", "--trust", cwd=project).returncode == 0
    assert (project / "store" / "x.txt").read_text() == "hi\n"
    (project / "store" / "x.txt.complete").unlink()
    (project / "store" / "x.txt").unlink()
    assert run_cli("fetch", cwd=project).returncode == 1  # --trust recorded nothing
    assert run_cli("fetch", cwd=project, env={"DATAMANIFEST_TRUST": "1"}).returncode == 0
    assert run_cli("fetch", "--force", cwd=project,
                   env={"DATAMANIFEST_TRUST": "0"}).returncode == 1
    assert _records(cfg) == []


def test_a_python_fetcher_is_not_even_imported(project: Path, cfg: Path):
    (project / "evil.py").write_text("import pathlib\npathlib.Path(__file__).with_name("
                                     "'IMPORTED').write_text('x')\ndef get(p):\n    pass\n")
    write_manifest(project, '[x]\nkey = "x.txt"\nfetcher = "evil:get"\n')
    proc = run_cli("fetch", "--json", cwd=project)
    assert proc.returncode == 1 and "DM180" in proc.stderr and "evil:get" in proc.stderr
    assert not (project / "IMPORTED").exists()


def test_a_loader_binding_needs_trust_before_it_is_imported(project: Path, cfg: Path,
                                                            monkeypatch):
    import datamanifest
    from datamanifest.errors import TrustError

    (project / "data.txt").write_text("a\n1\n")
    (project / "evilload.py").write_text("import pathlib\npathlib.Path(__file__).with_name("
                                         "'IMPORTED').write_text('x')\ndef read(p):\n"
                                         "    return 'loaded'\n")
    write_manifest(project, '[d]\nuri = "data.txt"\nloader = "evilload:read"\n\n'
                            '[plain]\nuri = "data.txt"\nkey = "plain.txt"\n')
    m = datamanifest.open_manifest(project)
    with pytest.raises(TrustError) as exc:
        m.load("d")
    assert exc.value.code == "DM180" and "evilload:read" in exc.value.diagnostics[0].message
    assert not (project / "IMPORTED").exists() and not (project / "store").exists()
    assert m.load("plain").startswith("a")  # a built-in loader needs nothing
    assert m.load("d", trusted=True) == "loaded"


def test_a_peer_tool_is_not_probed_for_an_untrusted_manifest(project: Path, cfg: Path,
                                                            tmp_path: Path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    peer = bindir / "datamanifest-julia"
    peer.write_text(f"#!/bin/sh\ntouch {tmp_path / 'PROBED'}\nexit 0\n")
    peer.chmod(0o755)
    write_manifest(project, '[j]\nkey = "j.txt"\n\n[j._LANG.julia]\nfetcher = "Fetch:get"\n')
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    proc = run_cli("fetch", cwd=project, env=env)
    assert proc.returncode == 1 and "DM180" in proc.stderr and "julia" in proc.stderr
    assert not (tmp_path / "PROBED").exists()


def test_plain_datasets_in_the_project_or_the_users_store_need_no_trust(
        http, served, project: Path, cfg: Path, tmp_path: Path):
    (served / "a.csv").write_bytes(b"a\n")
    write_manifest(project, f'[a]\nuri = "{http.url("a.csv")}"\n')
    assert run_cli("fetch", cwd=project).returncode == 0
    mine = tmp_path / "my-big-disk"
    (project / "datamanifest.toml").write_text(
        f'[_META]\nschema = 1\n\n[a]\nuri = "{http.url("a.csv")}"\n')
    proc = run_cli("fetch", cwd=project, env={"DATAMANIFEST_DATASETS_DIR": str(mine)})
    assert proc.returncode == 0, proc.stderr
    assert (mine / "127.0.0.1" / "a.csv").read_bytes() == b"a\n"
    assert _records(cfg) == []


@pytest.mark.covers("TRU-001", "TRU-004")
def test_a_committed_checkout_config_is_project_supplied(http, served, project: Path,
                                                         cfg: Path, tmp_path: Path):
    (served / "a.csv").write_bytes(b"a\n")
    (project / "datamanifest.toml").write_text(
        f'[_META]\nschema = 1\n\n[a]\nuri = "{http.url("a.csv")}"\n')
    elsewhere = tmp_path / "elsewhere"
    (project / ".datamanifest").mkdir()
    (project / ".datamanifest" / "config.toml").write_text(f'datasets_dir = "{elsewhere}"\n')
    proc = run_cli("fetch", cwd=project)
    assert proc.returncode == 1 and "DM180" in proc.stderr
    assert f"{project / '.datamanifest' / 'config.toml'}:1:16: error DM180" in proc.stderr
    assert not elsewhere.exists()
    # the same setting from the user's own configuration needs nothing
    (project / ".datamanifest" / "config.toml").unlink()
    (cfg / "datamanifest").mkdir(parents=True)
    (cfg / "datamanifest" / "config.toml").write_text(f'datasets_dir = "{elsewhere}"\n')
    assert run_cli("fetch", cwd=project).returncode == 0
    assert (elsewhere / "127.0.0.1" / "a.csv").exists()


@pytest.mark.covers("TRU-008")
def test_config_set_keeps_a_trust_and_never_creates_one(project: Path, cfg: Path,
                                                        tmp_path: Path):
    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    assert run_cli("config", "set", "lock_stale_age", "10", cwd=project).returncode == 0
    assert run_cli("trust", "--show", cwd=project).returncode == 1  # not created
    assert run_cli("trust", cwd=project).returncode == 0
    r = run_cli("config", "set", "datasets_dir", str(tmp_path / "big"), cwd=project)
    assert r.returncode == 0 and "trust kept" in r.stderr
    assert run_cli("trust", "--show", cwd=project).returncode == 0
    # an edit by hand is not the user's command to this tool: it revokes
    conf = project / ".datamanifest" / "config.toml"
    conf.write_text(conf.read_text().replace("big", "bigger"))
    assert run_cli("trust", "--show", cwd=project).returncode == 1


def test_maintenance_in_a_store_set_outside_needs_trust(http, served, project: Path,
                                                        cfg: Path, tmp_path: Path):
    (served / "a.csv").write_bytes(b"a\n")
    store = tmp_path / "shared"
    (project / "datamanifest.toml").write_text(
        f'[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "{store}"\n\n'
        f'[a]\nuri = "{http.url("a.csv")}"\n')
    assert run_cli("fetch", "--trust", cwd=project).returncode == 0
    r = run_cli("rm", "a", cwd=project)
    assert r.returncode == 1 and "DM180" in r.stderr and "`rm`" in r.stderr
    assert (store / "127.0.0.1" / "a.csv").exists()
    assert run_cli("rm", "a", "--dry-run", cwd=project).returncode == 0  # changes nothing
    assert run_cli("rm", "a", "--trust", cwd=project).returncode == 0
    assert not (store / "127.0.0.1" / "a.csv").exists()


def test_produced_datasets_in_a_store_set_outside_need_trust(project: Path, cfg: Path,
                                                             tmp_path: Path):
    import subprocess
    import sys

    cache = tmp_path / "elsewhere-cache"
    (project / "datamanifest.toml").write_text(
        f'[_META]\nschema = 1\n\n[_STORAGE]\ndatacache_dir = "{cache}"\n')
    (project / "prod.py").write_text(
        "import datamanifest\n\n@datamanifest.cached(format='json', cachetype='t.f')\n"
        "def f(x: int = 1):\n"
        "    return {'x': x}\n\nprint(f(2))\n")
    env = dict(os.environ, XDG_CONFIG_HOME=str(cfg))
    proc = subprocess.run([sys.executable, "prod.py"], cwd=project, capture_output=True,
                          text=True, env=env)
    assert proc.returncode != 0 and "DM180" in proc.stderr and "datacache_dir" in proc.stderr
    assert not cache.exists()
    env["DATAMANIFEST_TRUST"] = "1"
    proc = subprocess.run([sys.executable, "prod.py"], cwd=project, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert list(cache.rglob("data.json"))


def test_an_unwritable_trust_folder_is_a_coded_error(project: Path, tmp_path: Path,
                                                     monkeypatch):
    cfg = tmp_path / "cfg"
    (cfg / "datamanifest").mkdir(parents=True)
    (cfg / "datamanifest" / "trust").write_text("a file where the folder should be")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cfg))
    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    proc = run_cli("trust", cwd=project)
    assert proc.returncode == 1 and "DM184" in proc.stderr and "Traceback" not in proc.stderr


def test_redaction_reaches_the_trust_record(project: Path, cfg: Path):
    write_manifest(project, '[x]\nkey = "x.txt"\n'
                            'shell = "curl -o $download_path https://u:hunter2@h.example.org/x"\n')
    assert run_cli("trust", cwd=project).returncode == 0
    [record] = _records(cfg)
    text = record.read_text()
    assert "hunter2" not in text and "u:****@h.example.org" in text


def test_lock_publish_line_is_inherited_by_the_next_holder(tmp_path: Path):
    """LCK-009: the evidence that a killed holder was changing its target survives the
    reclaim, and the next holder writes it into its own lock at once."""
    import subprocess
    import sys

    from datamanifest.store.lock import Lock

    path = tmp_path / "x.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(f"{dead.pid} {os.uname().nodename}\npublish\n")
    os.utime(path, (0, 0))
    lock = Lock(path, stale_age=0.1).acquire()
    assert lock.inherited and path.read_text().endswith("\npublish\n")
    lock.release()
    assert not path.exists()
    path.write_text(f"{dead.pid} {os.uname().nodename}\n")  # killed before publishing
    os.utime(path, (0, 0))
    lock = Lock(path, stale_age=0.1).acquire()
    assert not lock.inherited and path.read_text().count("\n") == 1
    lock.mark_publishing()
    assert path.read_text().endswith("\npublish\n")
    lock.release()
    assert not path.exists()


def test_a_dry_run_says_the_fetch_would_be_refused(project: Path, cfg: Path):
    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    proc = run_cli("fetch", "--dry-run", cwd=project)
    assert proc.returncode == 1 and "needs trust (DM180): runs the command" in proc.stdout
    assert "would be refused (DM180)" in proc.stderr
    rows = json.loads(run_cli("fetch", "-n", "--json", cwd=project).stdout)["datasets"]
    assert rows[0]["needs_trust"] and not (project.parent / "PWNED").exists()
    assert run_cli("fetch", "-n", "--trust", cwd=project).returncode == 0


def test_information_is_a_notice_for_ci(project: Path, cfg: Path):
    """DM181 in the CI forms of check: a GitHub notice, a SARIF note (DIAG-010, DIAG-011)."""
    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    gh = run_cli("check", "--output-format", "github", cwd=project)
    assert gh.returncode == 0 and gh.stdout.startswith("::notice ") and "title=DM181" in gh.stdout
    sarif = json.loads(run_cli("check", "--output-format", "sarif", cwd=project).stdout)
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "DM181" and result["level"] == "note"
    rule = sarif["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["defaultConfiguration"]["level"] == "note"


def test_make_demo_shows_the_untrusted_manifest_on_every_run(tmp_path: Path, cfg: Path):
    """`make demo` run twice (CI reuses HOME between runs): the second run's trust record
    from the first must not make `trust --show` say trusted (it exited 0 and failed CI)."""
    from datamanifest import demo

    project = tmp_path / "demo-run" / "project"
    project.mkdir(parents=True)
    (project / "datamanifest.toml").write_text(demo.MANIFEST.format(
        base="http://127.0.0.1:9", finals="0" * 64, tarball="0" * 64, nemo='"http://x/a.nc"'))
    assert run_cli("trust", cwd=project).returncode == 0  # the first run trusted it
    assert run_cli("trust", "--show", cwd=project).returncode == 0
    assert demo._forget_earlier_trust(project / "datamanifest.toml")  # the second run
    assert run_cli("trust", "--show", cwd=project).returncode == 1
    assert _records(cfg) == []


@pytest.mark.covers("TRU-005")
def test_trust_given_to_one_command_ends_with_it(project: Path, cfg: Path, monkeypatch):
    """`--trust` is for that command only, also when commands run in one process (a notebook,
    CliRunner): the next command of the process is not trusted by it."""
    from click.testing import CliRunner

    from datamanifest import trust
    from datamanifest.cli import main

    write_manifest(project, '[x]\nkey = "x.txt"\n' + SHELL)
    monkeypatch.chdir(project)
    runner = CliRunner()
    assert runner.invoke(main, ["fetch", "--dry-run", "--trust"]).exit_code == 0
    assert trust.granted_by() is None
    assert runner.invoke(main, ["fetch", "--dry-run"]).exit_code == 1
    assert not (project.parent / "PWNED").exists()
