"""`where` and `config show|set|unset` over real files (SCHEMA.md §14)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from .conftest import run_cli, write_manifest


def _rows(proc) -> dict:
    return {r["field"]: r for r in json.loads(proc.stdout)["settings"]}


def test_config_ladder_edits_and_where(project: Path, tmp_path: Path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    write_manifest(project, '[a]\nuri = "https://h.example.org/a.csv"\n')
    assert _rows(run_cli("where", "--json", cwd=project, env=env))["datasets_dir"]["rung"] == "manifest"
    # the user file sets the pools; the checkout file beats the manifest for datasets_dir
    assert run_cli("config", "set", "datasets_pools", "/pool/a", "/pool/b", "--global",
                   cwd=project, env=env).returncode == 0
    assert run_cli("config", "set", "datasets_dir", "/fast/store", cwd=project, env=env).returncode == 0
    rows = _rows(run_cli("where", "--json", cwd=project, env=env))
    assert rows["datasets_dir"] == {"field": "datasets_dir", "value": "/fast/store", "rung": "checkout"}
    assert rows["datasets_pools"]["value"] == ["/pool/a", "/pool/b"]
    assert rows["datasets_pools"]["rung"] == "user"
    # a host section for this machine
    import socket

    host = socket.gethostname()
    assert run_cli("config", "set", "lock_stale_age", "90", "--host", host[:3] + "*",
                   cwd=project, env=env).returncode == 0
    rows = _rows(run_cli("where", "--json", cwd=project, env=env))
    assert rows["lock_stale_age"] == {"field": "lock_stale_age", "value": 90.0, "rung": "checkout-host"}
    # invalid values are refused before anything is written
    bad = run_cli("config", "set", "lock_stale_age", "[1]", cwd=project, env=env)
    assert bad.returncode == 1 and "DM061" in bad.stderr
    assert run_cli("config", "unset", "datasets_dir", cwd=project, env=env).returncode == 0
    assert _rows(run_cli("where", "--json", cwd=project, env=env))["datasets_dir"]["rung"] == "manifest"
    local = tomllib.loads((project / ".datamanifest" / "config.toml").read_text())
    assert "datasets_dir" not in local and local["_HOST"][host[:3] + "*"]["lock_stale_age"] == 90


def test_config_project_scope_keeps_comments(project: Path, tmp_path: Path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    text = ('# shared settings\n[_STORAGE]\ndatasets_dir = "store"   # keep me\n\n'
            '[a]\nuri = "https://h.example.org/a.csv"\n')
    (project / "datamanifest.toml").write_text(text)
    assert run_cli("config", "set", "scratch", "/scratch/team", "--project", cwd=project,
                   env=env).returncode == 0
    new = (project / "datamanifest.toml").read_text()
    assert "# shared settings" in new and "# keep me" in new
    assert tomllib.loads(new)["_STORAGE"]["scratch"] == "/scratch/team"
    assert run_cli("check", cwd=project).returncode == 0
    shown = run_cli("config", "show", "--json", cwd=project, env=env)
    assert {r["field"] for r in json.loads(shown.stdout)} >= {"datasets_dir", "datasets_pools"}
