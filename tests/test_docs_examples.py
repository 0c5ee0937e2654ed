"""Every example of the documentation site runs (issue 26): each page of docs/pages/ is one
session of tests/docs_examples.py against a loopback server of real files; README.md's
examples are run by tests/test_readme.py with the same runner."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import pytest

from datamanifest.testing import LoopbackServer

from .conftest import ROOT
from .docs_examples import run_page, split_page, stage_served

PAGES = sorted((ROOT / "docs" / "pages").rglob("*.md"))
#: pages whose scene another test sets (front matter ``examples.runner`` names it)
OWN_RUNNER = [p for p in PAGES if split_page(p.read_text(encoding="utf-8"))[0].get("runner")]


@pytest.fixture
def reader(tmp_path: Path, monkeypatch):
    """A reader's machine: an empty home and config, a wide terminal, the loopback
    example.org serving real files, and an empty project folder as the working directory.
    Yields (project, the server's URL, the served folder, the server)."""
    for var in ("DATAMANIFEST_TOML", "DATAMANIFEST_DATASETS_DIR", "DATAMANIFEST_DATACACHE_DIR",
                "DATAMANIFEST_TRUST"):  # a reader has trusted nothing
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    for sub in ("config", "data", "cache"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    # `python` and `datamanifest` are the ones under test, also for the programs a command
    # starts (`conformance run --impl ...`, `push`'s far end)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("DATAMANIFEST_REMOTE", f"{sys.executable} -m datamanifest")
    served = tmp_path / "served"
    stage_served(served)
    project = tmp_path / "project"
    project.mkdir()
    with LoopbackServer(served) as srv:
        yield project, srv.url(""), served, srv


def run_doc(rel: str, reader, request, monkeypatch, text: str | None = None):
    project, base, _, server = reader
    page = ROOT / rel
    meta, _ = split_page(text if text is not None else page.read_text(encoding="utf-8"))
    for path, per_second in (meta.get("rate") or {}).items():  # a slow link, to interrupt
        server.rate[path] = float(per_second)
    extra: dict[str, str] = {}
    for need in meta.get("needs") or ():
        if need == "ssh":
            sshd = request.getfixturevalue("sshd")
            extra["ssh"] = f"ssh://{getpass.getuser()}@127.0.0.1:{sshd['port']}"
        elif need == "s3":
            request.getfixturevalue("s3_endpoint")
        else:
            raise AssertionError(f"{rel}: unknown need {need!r}")
    for name, value in (meta.get("env") or {}).items():
        monkeypatch.setenv(name, str(value).format(tmp=str(project.parent),
                                                   home=os.environ["HOME"], **extra))
    monkeypatch.chdir(project)
    return run_page(page, rel, project, base, extra, text=text)


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in PAGES
                                  if p not in OWN_RUNNER])
def test_page_examples_run(page, reader, request, monkeypatch):
    session = run_doc(page, reader, request, monkeypatch)
    _, blocks = split_page((ROOT / page).read_text(encoding="utf-8"))
    runnable = [b for b in blocks if b.lang in ("python", "console") and not b.not_run
                and not b.file]
    assert session.ran >= len(runnable)


def test_not_run_blocks_say_why():
    """A block skipped by the tests says so on the page, with a reason."""
    for page in PAGES:
        _, blocks = split_page(page.read_text(encoding="utf-8"))
        for b in blocks:
            if b.not_run:
                reason = b.title.split(":", 1)[1].strip() if ":" in b.title else ""
                assert len(reason) > 8, f"{page}:{b.line}: 'Not run' needs a reason"


def test_pages_with_their_own_runner_name_it():
    for page in OWN_RUNNER:
        runner = split_page(page.read_text(encoding="utf-8"))[0]["runner"]
        assert (ROOT / runner).is_file() and page.name in (ROOT / runner).read_text(encoding="utf-8")
