"""`check --output-format github|sarif` (SCHEMA.md DIAG-010, DIAG-011): GitHub workflow
commands parsed as the runner parses them, and SARIF logs validated against the SARIF 2.1.0
JSON Schema (the copy the npm package @microsoft/jest-sarif ships; `make test` fetches it)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli

SARIF_SCHEMA = ROOT / ".cache" / "sarif" / "sarif-2.1.0-rtm.5.json"

BROKEN = """[_META]
schema = 1

[a]
uri = "https://h.example.org/a.csv"
checksun = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
requires = ["zz"]

[b]
uri = "https://h.example.org/b.csv"
sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
"""

CLEAN = """[_META]
schema = 1

[a]
uri = "https://h.example.org/a.csv"
checksum = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
"""

#: a workflow command as the Actions runner reads it: ::LEVEL PROPS::DATA
_COMMAND = re.compile(r"^::(error|warning|notice) (?P<props>[^:]*)::(?P<data>.*)$")


def _unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":") \
        .replace("%2C", ",").replace("%25", "%")


def _parse_commands(out: str) -> list[dict]:
    found = []
    for line in out.splitlines():
        m = _COMMAND.match(line)
        assert m, f"not a workflow command: {line!r}"
        props = dict(p.split("=", 1) for p in m["props"].split(","))
        found.append({"level": m.group(1), **{k: _unescape(v) for k, v in props.items()},
                      "message": _unescape(m["data"])})
    return found


def _sarif_validator():
    if not SARIF_SCHEMA.is_file():
        if os.environ.get("CI"):
            pytest.fail("the SARIF schema is missing (make test fetches it with npm)")
        pytest.skip("the SARIF schema is missing: run `make test-tools` (needs npm)")
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.covers("DIAG-010")
def test_github_commands_annotate_each_diagnostic(project: Path):
    (project / "datamanifest.toml").write_text(BROKEN)
    r = run_cli("check", "--output-format", "github", cwd=project)
    assert r.returncode == 1
    cmds = _parse_commands(r.stdout)
    by_title = {c["title"]: c for c in cmds}
    assert set(by_title) == {"DM010", "DM040", "DM022"}
    assert by_title["DM010"] == {"level": "error", "file": "datamanifest.toml", "line": "6",
                                 "col": "1", "title": "DM010",
                                 "message": "dataset 'a': unknown field 'checksun' "
                                            "(did you mean 'checksum'?)"}
    assert by_title["DM040"]["line"] == "7" and by_title["DM040"]["col"] == "13"
    assert by_title["DM022"]["level"] == "warning"
    # the same diagnostics as the text form, one for one
    text = run_cli("check", cwd=project).stdout.splitlines()
    assert len(text) == len(cmds)
    assert "2 error(s), 1 warning(s)" in r.stderr


@pytest.mark.covers("DIAG-010")
def test_github_commands_escape_properties_and_data(project: Path):
    folder = project / "a,b:c"
    folder.mkdir()
    (folder / "datamanifest.toml").write_text("[_META]\nschema = 1\n[a]\nuri = 3\n")
    r = run_cli("check", "--output-format", "github", "a,b:c/datamanifest.toml", cwd=project)
    assert r.returncode == 1
    line = r.stdout.strip()
    assert "file=a%2Cb%3Ac/datamanifest.toml," in line  # , and : escaped in a property
    cmd = next(c for c in _parse_commands(r.stdout) if c["title"] == "DM011")
    assert cmd["file"] == "a,b:c/datamanifest.toml" and (cmd["line"], cmd["col"]) == ("4", "7")


def test_github_format_prints_nothing_on_stdout_for_a_clean_file(project: Path):
    (project / "datamanifest.toml").write_text(CLEAN)
    r = run_cli("check", "--output-format", "github", cwd=project)
    assert r.returncode == 0 and r.stdout == ""
    assert "ok: 1 file(s), 1 dataset(s)" in r.stderr


@pytest.mark.covers("DIAG-011")
def test_sarif_log_is_valid_sarif_2_1_0(project: Path):
    validator = _sarif_validator()
    (project / "datamanifest.toml").write_text(BROKEN)
    chunks = project / "x.chunks.json"
    chunks.write_text('{"chunk_manifest": 1,\n "sources": 3}\n')
    r = run_cli("check", "--output-format", "sarif", "datamanifest.toml", "x.chunks.json",
                cwd=project)
    assert r.returncode == 1
    log = json.loads(r.stdout)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    (run,) = log["runs"]
    assert log["version"] == "2.1.0" and run["columnKind"] == "unicodeCodePoints"
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert {res["ruleId"] for res in results} == {"DM010", "DM040", "DM022", "DM150"}
    for res in results:  # each result points at its rule and its file
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        loc = res["locations"][0]["physicalLocation"]
        art = loc["artifactLocation"]
        assert run["artifacts"][art["index"]]["location"]["uri"] == art["uri"]
        assert art["uriBaseId"] == "%SRCROOT%"
    dm010 = next(res for res in results if res["ruleId"] == "DM010")
    assert dm010["level"] == "error"
    assert dm010["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "datamanifest.toml", "uriBaseId": "%SRCROOT%", "index": 0},
        "region": {"startLine": 6, "startColumn": 1}}
    assert next(ru for ru in rules if ru["id"] == "DM010")["properties"]["rule"] == "MAN-011"
    assert next(res for res in results if res["ruleId"] == "DM022")["level"] == "warning"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    assert run["invocations"] == [{"executionSuccessful": True, "exitCode": 1}]


@pytest.mark.covers("DIAG-011")
def test_sarif_to_a_file_and_for_a_clean_run(project: Path):
    validator = _sarif_validator()
    (project / "datamanifest.toml").write_text(CLEAN)
    r = run_cli("check", "--output-format", "sarif", "-o", "out/check.sarif", cwd=project)
    assert r.returncode == 0 and r.stdout == ""
    log = json.loads((project / "out" / "check.sarif").read_text())
    assert not list(validator.iter_errors(log))
    assert log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"] == []


def test_sarif_uri_of_a_file_outside_the_working_directory(tmp_path: Path):
    validator = _sarif_validator()
    inside, outside = tmp_path / "in", tmp_path / "out dir"
    inside.mkdir()
    outside.mkdir()
    (outside / "datamanifest.toml").write_text(BROKEN)
    r = run_cli("check", "--output-format", "sarif", str(outside / "datamanifest.toml"),
                cwd=inside)
    log = json.loads(r.stdout)
    assert not list(validator.iter_errors(log))
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"] == (outside / "datamanifest.toml").resolve().as_uri()  # space as %20
    assert "%20" in uri["uri"] and "uriBaseId" not in uri


def test_json_and_text_forms_are_unchanged(project: Path):
    (project / "datamanifest.toml").write_text(BROKEN)
    old = run_cli("check", "--format", "json", cwd=project)
    new = run_cli("check", "--output-format", "json", cwd=project)
    assert old.returncode == new.returncode == 1
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert [d["code"] for d in json.loads(new.stdout)] == ["DM010", "DM040", "DM022"]
    text = run_cli("check", cwd=project)
    assert text.stdout.splitlines()[0] == (
        f"{project.resolve() / 'datamanifest.toml'}:6:1: error DM010 dataset 'a': unknown field 'checksun' "
        "(did you mean 'checksum'?)")
