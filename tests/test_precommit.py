"""pre-commit hooks (.pre-commit-hooks.yaml, SCHEMA.md INT-001) run by the real `pre-commit`:
it clones this checkout's package as a hook repository, builds a virtual environment and
pip-installs the package into it from the package registry, then runs the hooks in a
temporary git repository.

The hook repository is a commit of the package's files, made at a path and with a commit
identity that depend only on their content, under ``.cache/pre-commit/``; PRE_COMMIT_HOME is
``.cache/pre-commit/home``. `pre-commit run` keys its environments by repository and
revision, so later runs reuse the environment the first one built; `try-repo` builds one in a
throw-away store each time, from a wheelhouse of the package's dependencies downloaded once
from the registry (so a run needs no network and takes seconds)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT

CACHE = ROOT / ".cache" / "pre-commit"

def _package_files() -> tuple[str, ...]:
    """What pip needs to build and install the package: the metadata, the sources and the
    folders the wheel includes from the top level (pyproject.toml)."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = meta["tool"]["hatch"]["build"]["targets"]["wheel"]
    return ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "src",
            *wheel.get("force-include", {}))

CLEAN = """[_META]
schema = 1

[a]
checksum = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
uri = "https://h.example.org/a.csv"
"""

BROKEN = CLEAN.replace("checksum = ", "checksun = ")


def _pre_commit() -> str:
    exe = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    if not os.access(exe, os.X_OK) or shutil.which("git") is None:
        if os.environ.get("CI"):
            pytest.fail("pre-commit or git is missing (the test extra installs pre-commit)")
        pytest.skip("pre-commit or git is missing: pip install -e '.[test]'")
    return exe


def _files() -> list[Path]:
    out = []
    for name in _package_files():
        p = ROOT / name
        if p.is_file():
            out.append(p)
        else:
            out.extend(f for f in sorted(p.rglob("*")) if f.is_file()
                       and "__pycache__" not in f.parts and f.suffix != ".pyc")
    return out


_GIT_ENV = {"GIT_AUTHOR_NAME": "datamanifest tests", "GIT_AUTHOR_EMAIL": "tests@invalid",
            "GIT_COMMITTER_NAME": "datamanifest tests", "GIT_COMMITTER_EMAIL": "tests@invalid",
            "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
            "GIT_CONFIG_NOSYSTEM": "1"}


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **_GIT_ENV, "HOME": str(cwd)}
    r = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
                        *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return r.stdout.strip()


def _wheelhouse() -> Path:
    """The wheels the hook's environment installs (the package's dependencies and its build
    backend), downloaded once from the package registry into ``.cache/pre-commit/``; the
    hook's pip then installs from there alone (PIP_NO_INDEX), in seconds."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = sorted([*meta["project"]["dependencies"], *meta["build-system"]["requires"]])
    key = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:16]
    house = CACHE / f"wheels-{key}"
    if (house / ".done").exists():
        return house
    staging = CACHE / f".staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:",
                        "-d", str(staging), *wanted], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"the hook's dependencies could not be downloaded: {r.stderr[-500:]}")
    (staging / ".done").write_text("")
    try:
        staging.rename(house)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return house


def _prune_old_repositories(max_age: float = 86400.0) -> None:
    """Drop hook repositories of older package contents (a day unused) and, then, the
    environments pre-commit built for them (`pre-commit gc`)."""
    import time

    old = [p for p in CACHE.glob("repo-*") if time.time() - p.stat().st_mtime > max_age]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    if old and (CACHE / "home").is_dir():
        subprocess.run([_pre_commit(), "gc"], capture_output=True, timeout=120,
                       env={**os.environ, "PRE_COMMIT_HOME": str(CACHE / "home")})


@pytest.fixture(scope="module")
def hook_repo() -> tuple[Path, str]:
    """(path, revision) of the hook repository made from this checkout's package files."""
    _pre_commit()
    files = _files()
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    repo = CACHE / f"repo-{digest.hexdigest()[:16]}"
    if not (repo / ".git" / "datamanifest-done").exists():
        _prune_old_repositories()
        staging = CACHE / f".staging-{uuid.uuid4().hex}"
        for f in files:
            dest = staging / f.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        _git("init", "-q", cwd=staging)
        _git("add", "-A", cwd=staging)
        _git("commit", "-q", "-m", "datamanifest package for the pre-commit tests", cwd=staging)
        (staging / ".git" / "datamanifest-done").write_text("")
        try:
            staging.rename(repo)  # atomic: another worker may have made the same one
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    os.utime(repo)  # in use: not pruned for a day
    return repo, _git("rev-parse", "HEAD", cwd=repo)


def _project(tmp_path: Path, manifest: str, config: str | None = None) -> Path:
    project = tmp_path / "work"
    project.mkdir(parents=True)
    (project / "datamanifest.toml").write_text(manifest)
    if config is not None:
        (project / ".pre-commit-config.yaml").write_text(config)
    _git("init", "-q", cwd=project)
    _git("add", "-A", cwd=project)
    return project


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **_GIT_ENV, "PRE_COMMIT_HOME": str(CACHE / "home"),
           "PRE_COMMIT_COLOR": "never", "PIP_NO_INDEX": "1", "PIP_NO_COMPILE": "1",
           "PIP_FIND_LINKS": str(_wheelhouse()), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("DATAMANIFEST_TOML", None)
    env.pop("PYTHONPATH", None)  # the hook runs the package pip installed, not this checkout
    return subprocess.run([_pre_commit(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow  # try-repo builds the hook's environment anew each time (~10-25 s)
@pytest.mark.covers("INT-001")
def test_try_repo_check_passes_a_clean_manifest_and_fails_a_broken_one(hook_repo, tmp_path):
    repo, _ = hook_repo
    project = _project(tmp_path / "clean", CLEAN)
    r = _run("try-repo", str(repo), "datamanifest-check", "--all-files", cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^datamanifest check\.+Passed$", r.stdout, re.M), r.stdout

    project = _project(tmp_path / "broken", BROKEN)
    (project / "ok").mkdir()
    (project / "ok" / "datasets.toml").write_text(CLEAN)  # another manifest name, clean
    (project / "notes.toml").write_text("not = [a manifest\n")  # not matched by the hook
    _git("add", "-A", cwd=project)
    r = _run("try-repo", str(repo), "datamanifest-check", "--all-files", cwd=project)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "datamanifest check" in r.stdout and "Failed" in r.stdout
    assert ("datamanifest.toml:5:1: error DM010 dataset 'a': unknown field 'checksun' "
            "(did you mean 'checksum'?)") in r.stdout
    assert "1 error(s), 0 warning(s) in 2 file(s)" in r.stdout  # both manifests, one broken
    assert "ok/datasets.toml" not in r.stdout and "notes.toml" not in r.stdout


def _config(repo: Path, rev: str, *hooks: str) -> str:
    lines = ["repos:", f"  - repo: {repo}", f"    rev: {rev}", "    hooks:"]
    for h in hooks:
        hook_id, _, args = h.partition(" ")
        lines.append(f"      - id: {hook_id}")
        if args:
            lines.append(f"        args: [{args}]")
    return "\n".join(lines) + "\n"


@pytest.mark.covers("INT-001")
def test_check_hook_passes_a_clean_manifest_and_fails_a_broken_one(hook_repo, tmp_path):
    repo, rev = hook_repo
    project = _project(tmp_path, CLEAN, _config(repo, rev, "datamanifest-check"))
    r = _run("run", "--all-files", cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "datamanifest check" in r.stdout and "Passed" in r.stdout
    (project / "datamanifest.toml").write_text(BROKEN)
    _git("add", "-A", cwd=project)
    r = _run("run", "--all-files", cwd=project)
    assert r.returncode == 1 and "Failed" in r.stdout
    assert "datamanifest.toml:5:1: error DM010" in r.stdout


@pytest.mark.covers("INT-001")
def test_format_hook_checks_without_writing_and_rewrites_by_default(hook_repo, tmp_path):
    repo, rev = hook_repo
    not_canonical = CLEAN.replace("[_META]\nschema = 1\n\n[a]\n", "[a]\n") + \
        "\n[_META]\nschema = 1\n"
    config = _config(repo, rev, "datamanifest-format --check", "datamanifest-check")
    project = _project(tmp_path / "p", not_canonical, config)
    r = _run("run", "--all-files", cwd=project)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "datamanifest.toml:1: not in canonical form" in r.stdout
    assert (project / "datamanifest.toml").read_text() == not_canonical  # nothing written

    (project / ".pre-commit-config.yaml").write_text(
        _config(repo, rev, "datamanifest-format", "datamanifest-check"))
    _git("add", "-A", cwd=project)
    r = _run("run", "--all-files", cwd=project)
    assert r.returncode == 1 and "files were modified by this hook" in r.stdout, r.stdout
    assert (project / "datamanifest.toml").read_text() == CLEAN  # the canonical form
    _git("add", "-A", cwd=project)
    r = _run("run", "--all-files", cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_hooks_file_is_a_valid_pre_commit_manifest():
    r = subprocess.run([_pre_commit(), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"datamanifest-check", "datamanifest-format"}
    check = re.compile(hooks["datamanifest-check"]["files"])
    fmt = re.compile(hooks["datamanifest-format"]["files"])
    for path in ("datamanifest.toml", "sub/DataManifest.toml", "datasets.toml", "a/Datasets.toml",
                 ".datamanifest/config.toml", "cube.append.toml", "append.toml",
                 "refs/tas.chunks.json"):
        assert check.search(path), path
    for path in ("pyproject.toml", "config.toml", "my-datasets.toml", "x.json", "chunks.json"):
        assert not check.search(path), path
    assert fmt.search("a/datamanifest.toml") and not fmt.search("cube.append.toml")
