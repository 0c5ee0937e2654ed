"""Shared test fixtures: a real loopback HTTP server and project folders."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(tmp_path: Path) -> Path:
    d = tmp_path / "served"
    d.mkdir()
    return d


@pytest.fixture
def http(served: Path):
    with LoopbackServer(served) as srv:
        yield srv


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / "project"
    d.mkdir()
    return d


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m datamanifest ARGS` as a user would (a real process)."""
    full_env = dict(os.environ)
    full_env.pop("DATAMANIFEST_TOML", None)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "datamanifest", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, input=input, timeout=120)


def write_manifest(project: Path, body: str) -> Path:
    p = project / "datamanifest.toml"
    p.write_text('[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\n\n' + body)
    return p
