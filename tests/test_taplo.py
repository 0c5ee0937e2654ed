"""Editors: the manifest JSON Schema drives Taplo, the TOML toolkit behind the "Even Better
TOML" extension (SCHEMA.md INT-010). The real `taplo` CLI (the `taplo` package of the test
extra) lints every manifest fixture with schemas/manifest.v1.json; the `#:schema` directive,
the example .taplo.toml and the SchemaStore catalog entry are each used as a user would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datamanifest.spec.discovery import MANIFEST_NAMES

from .conftest import ROOT, run_cli

SCHEMA = ROOT / "schemas" / "manifest.v1.json"
EDITORS = ROOT / "schemas" / "editors"
VALID = sorted((ROOT / "fixtures" / "manifest" / "valid").glob("*.toml"))
INVALID = sorted((ROOT / "fixtures" / "manifest" / "invalid").glob("*.toml"))
BROKEN = (ROOT / "fixtures" / "manifest" / "invalid" / "unknown-field.toml").read_text()


def _taplo() -> str:
    exe = shutil.which("taplo") or str(Path(sys.executable).parent / "taplo")
    if not os.access(exe, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("taplo is missing (the test extra installs the taplo package)")
        pytest.skip("taplo is missing: pip install -e '.[test]'")
    return exe


def _lint(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([_taplo(), "lint", "--colors", "never", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RUST_LOG": "warn"})


def _expected(case: Path) -> dict:
    return json.loads(case.with_suffix(".expected.json").read_text())


def _schema_rules() -> set[str]:
    """The rule IDs schemas/README.md lists as expressed by the schema."""
    text = (ROOT / "schemas" / "README.md").read_text()
    section = text.split("### Expressed by the schema", 1)[1].split("###", 1)[0]
    return set(re.findall(r"\b([A-Z]+-\d{3})\b", section))


@pytest.mark.covers("INT-010")
def test_taplo_accepts_every_valid_manifest_fixture():
    r = _lint("--schema", SCHEMA.as_uri(), *map(str, VALID))
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(VALID) > 20


@pytest.mark.covers("INT-010")
@pytest.mark.parametrize("case", INVALID, ids=[c.stem for c in INVALID])
def test_taplo_rejects_exactly_the_invalid_fixtures_the_schema_expresses(case: Path):
    exp = _expected(case)
    r = _lint("--schema", SCHEMA.as_uri(), str(case))
    expressible = exp["layer"] in ("syntax", "schema")
    # the list in schemas/README.md says which rules the schema expresses: an expressible
    # case's rule is listed; a case the schema cannot express cites a rule that is not
    # (MAN-011 is listed for dataset tables, yet a typo in [_META] is judged by MAN-008)
    listed = _schema_rules()
    if expressible:
        assert exp["rule"] in listed or exp["layer"] == "syntax", \
            f"{exp['rule']} is missing from schemas/README.md"
    else:
        assert set(exp.get("rules", [exp["rule"]])) - listed, \
            f"{exp['rule']} is listed wrongly in schemas/README.md"
    if not expressible:  # a rule across fields or datasets: check's, not the schema's
        assert r.returncode == 0, r.stderr[-2000:]
        return
    assert r.returncode == 1
    # the diagnostic points at the line the conformance suite expects (DIAG-004)
    assert f"{case.name}:{exp['line']}:" in r.stderr, r.stderr[-2000:]


def test_the_schema_directive_on_the_first_line(tmp_path: Path):
    (tmp_path / "manifest.schema.json").write_text(run_cli("schema", "manifest").stdout)
    for name, body, ok in (("good.toml", (VALID[0]).read_text(), True),
                           ("bad.toml", BROKEN, False)):
        (tmp_path / name).write_text("#:schema ./manifest.schema.json\n" + body)
        r = _lint("--no-auto-config", name, cwd=tmp_path)
        assert (r.returncode == 0) == ok, r.stderr[-2000:]
        assert run_cli("check", name, cwd=tmp_path).returncode == (0 if ok else 1)
    assert "bad.toml:7:" in _lint(name, cwd=tmp_path).stderr  # one line lower


def test_the_example_taplo_configuration(tmp_path: Path):
    shutil.copy(EDITORS / "example.taplo.toml", tmp_path / ".taplo.toml")
    (tmp_path / "manifest.schema.json").write_text(run_cli("schema", "manifest").stdout)
    for i, name in enumerate(MANIFEST_NAMES):
        (tmp_path / f"p{i}").mkdir()
        (tmp_path / f"p{i}" / name).write_text(BROKEN)
    (tmp_path / "pyproject.toml").write_text(BROKEN)  # not a manifest: not validated
    r = _lint(cwd=tmp_path)
    assert r.returncode == 1
    for name in MANIFEST_NAMES:
        assert f"/{name}:6:" in r.stderr, name
    assert "pyproject.toml" not in r.stderr
    (tmp_path / "pyproject.toml").unlink()
    for i, name in enumerate(MANIFEST_NAMES):
        shutil.copy(VALID[0], tmp_path / f"p{i}" / name)
    assert _lint(cwd=tmp_path).returncode == 0


@pytest.mark.covers("INT-010")
def test_the_schemastore_catalog_entry_matches_the_discovery_names(tmp_path: Path):
    entry = json.loads((EDITORS / "schemastore-catalog-entry.json").read_text())
    assert sorted(entry) == ["description", "fileMatch", "name", "url"]
    assert entry["fileMatch"] == list(MANIFEST_NAMES)
    assert entry["url"].endswith("/schemas/manifest.v1.json")
    # Taplo reads SchemaStore catalogs: the entry, pointed at this checkout's schema
    local = {**entry, "url": SCHEMA.as_uri()}
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"$schema": "https://json.schemastore.org/schema-catalog.json",
                                   "version": 1.0, "schemas": [local]}))
    for name in (*MANIFEST_NAMES, "other.toml"):
        (tmp_path / name).write_text(BROKEN)
        r = _lint("--no-auto-config", "--schema-catalog", catalog.as_uri(), name, cwd=tmp_path)
        assert r.returncode == (0 if name == "other.toml" else 1), (name, r.stderr[-1000:])
