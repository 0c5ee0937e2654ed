"""The conformance fixtures: check, the JSON Schema and the models agree on every case."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from datamanifest import schemas
from datamanifest.check import check_path
from datamanifest.errors import CODES
from datamanifest.spec.manifest import normalize, validate_structure

from .conftest import ROOT, run_cli

from datamanifest.spec.documents import DOC_TYPES, MODELS, NORMALIZERS

FIX = ROOT / "fixtures" / "manifest"
VALID = sorted((FIX / "valid").glob("*.toml"))
INVALID = sorted((FIX / "invalid").glob("*.toml"))
OTHER_TYPES = [t for t in DOC_TYPES if t != "manifest"]
OTHER_VALID = [p for t in OTHER_TYPES for p in sorted((ROOT / "fixtures" / t / "valid").glob("*.toml"))]
OTHER_INVALID = [p for t in OTHER_TYPES
                 for p in sorted((ROOT / "fixtures" / t / "invalid").glob("*.toml"))]


def _expected(p: Path) -> dict:
    return json.loads(p.with_suffix(".expected.json").read_text(encoding="utf-8"))


def _model_verdict(data: dict) -> bool:
    try:
        validate_structure(data)
    except ValueError:
        return False
    return True


def test_enough_fixtures():
    assert len(VALID) >= 15 and len(INVALID) >= 15
    for p in VALID + INVALID:
        assert p.with_suffix(".expected.json").is_file(), p


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_fixture(path: Path):
    exp = _expected(path)
    result = check_path(path)
    assert result.ok, [d.render() for d in result.errors]
    got = normalize(result.manifest)
    assert got["schema"] == exp["schema"]
    assert got["datasets"] == exp["datasets"]
    # information (DM181, TRU-007) is not a warning: the `trust` fixtures cover it
    warnings = [{"code": d.code, "line": d.line, "column": d.column} for d in result.warnings]
    assert warnings == exp["warnings"]
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert schemas.validator("manifest").is_valid(data)
    assert _model_verdict(data)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
@pytest.mark.covers("VAL-002")
def test_invalid_fixture(path: Path):
    exp = _expected(path)
    assert exp["code"] in CODES and CODES[exp["code"]][0] == exp["rule"]
    result = check_path(path)
    errors = result.errors
    assert [(e.code, e.line, e.column) for e in errors] == [(exp["code"], exp["line"], exp["column"])]
    if exp["layer"] == "syntax":
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(path.read_text(encoding="utf-8"))
        return
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    schema_ok = schemas.validator("manifest").is_valid(data)
    assert schema_ok == (exp["layer"] == "semantic")
    assert _model_verdict(data) == schema_ok, "the JSON Schema and the models disagree"


@pytest.mark.parametrize("path", INVALID[:6] + INVALID[-3:], ids=lambda p: p.stem)
def test_cli_prints_expected_position(path: Path):
    exp = _expected(path)
    proc = run_cli("check", str(path))
    assert proc.returncode == 1
    assert f"{path}:{exp['line']}:{exp['column']}: error {exp['code']} " in proc.stdout
    assert "Traceback" not in proc.stderr


def test_every_document_code_is_covered():
    """Every code that `check` can report on a document has at least one fixture."""
    covered = {_expected(p)["code"] for p in INVALID + OTHER_INVALID}
    covered |= {w["code"] for p in VALID + OTHER_VALID for w in _expected(p)["warnings"]}
    document_codes = {c for c in CODES if "DM001" <= c < "DM070" and c not in ("DM002", "DM003")}
    document_codes |= {"DM092", "DM093", "DM100", "DM110", "DM111", "DM112"}
    assert document_codes - covered == set()


def _doc_type(p: Path) -> str:
    return p.parts[-3]


def _models_accept(doc_type: str, data: dict) -> bool:
    try:
        MODELS[doc_type].model_validate(data)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("path", OTHER_VALID, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_other_valid_fixture(path: Path):
    doc_type, exp = _doc_type(path), _expected(path)
    result = check_path(path, doc_type)
    assert result.ok and result.doc_type == doc_type
    assert [{"code": d.code, "line": d.line, "column": d.column}
            for d in result.warnings] == exp["warnings"]
    if exp["normalized"] is not None:
        assert NORMALIZERS[doc_type](result.data) == exp["normalized"]
        assert schemas.validator(doc_type).is_valid(result.data)
        assert _models_accept(doc_type, result.data)


@pytest.mark.parametrize("path", OTHER_INVALID, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_other_invalid_fixture(path: Path):
    doc_type, exp = _doc_type(path), _expected(path)
    result = check_path(path, doc_type)
    assert [(e.code, e.line, e.column) for e in result.errors] == \
        [(exp["code"], exp["line"], exp["column"])]
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    schema_ok = schemas.validator(doc_type).is_valid(data)
    assert schema_ok == (exp["layer"] == "semantic")
    assert _models_accept(doc_type, data) == schema_ok, "the JSON Schema and the models disagree"


def test_detection_by_name_and_meta():
    for path in OTHER_VALID:
        if path.stem != "legacy-schema-4":
            assert check_path(path).doc_type in (_doc_type(path), "manifest", "config")
    sidecar = (ROOT / "fixtures" / "config-sidecar" / "valid" / "ecosystem-vector-strings.toml")
    assert check_path(sidecar).doc_type == "config-sidecar"
    meta = ROOT / "fixtures" / "metadata-sidecar" / "valid" / "full.toml"
    assert check_path(meta).doc_type == "metadata-sidecar"
    state = ROOT / "fixtures" / "state" / "valid" / "records.toml"
    assert check_path(state).doc_type == "state"


def test_every_cited_rule_is_defined_in_schema_md():
    """Code, fixtures and the code table cite only rules SCHEMA.md defines."""
    import re

    spec = (ROOT / "SCHEMA.md").read_text(encoding="utf-8")
    defined = set(re.findall(r"\*\*([A-Z]+-\d{3})\*\*", spec))
    rule_rx = re.compile(r"\b(?:VER|DISC|MAN|KEY|SUM|STO|LCK|STA|FET|DIAG|VAL|PAR|SH|CFG|RES|LAD|SC|DOC|FMT|MIG|POOL|TREE)-\d{3}\b")
    cited = set()
    for folder in ("src", "fixtures"):
        for p in (ROOT / folder).rglob("*"):
            if p.suffix in (".py", ".json", ".toml"):
                cited |= set(rule_rx.findall(p.read_text(encoding="utf-8")))
    cited |= {rule for rule, _, _ in CODES.values()}
    assert cited - defined == set()
    for code, (rule, severity, _) in CODES.items():
        assert f"| {code} | {rule} | {severity} |" in spec, code


def test_every_must_rule_is_covered():
    """Every rule of SCHEMA.md with a MUST is covered by a conformance case, or, for the
    behavioural rules no fixture can express (locks, atomic writes), by a reference test
    marked @pytest.mark.covers."""
    import re

    spec = (ROOT / "SCHEMA.md").read_text(encoding="utf-8")
    rules = {m.group(1): m.group(2) for m in re.finditer(
        r"^- \*\*([A-Z]+-\d{3})\*\*(.*?)(?=^- \*\*|^#|^\||\Z)", spec, re.S | re.M)}
    must = {r for r, text in rules.items() if re.search(r"\bMUST\b", text)}
    index = json.loads((ROOT / "fixtures" / "index.json").read_text(encoding="utf-8"))
    by_cases = {r for c in index["cases"] for r in c["rules"]}
    by_tests = set()
    for p in (ROOT / "tests").glob("test_*.py"):
        for args in re.findall(r"@pytest\.mark\.covers\(([^)]*)\)", p.read_text(encoding="utf-8")):
            by_tests |= set(re.findall(r'"([A-Z]+-\d{3})"', args))
    assert len(must) >= 40
    assert must - by_cases - by_tests == set()
    behavioural = must - by_cases
    assert behavioural <= {"LCK-001", "LCK-002", "LCK-003", "MAN-012", "STA-003", "STA-005",
                           "VAL-002", "POOL-004", "TREE-009", "LAD-020", "LAD-021",
                           # produced datasets: declaring producers, publishing under a lock
                           "PRD-005", "PRD-006", "PRD-024",
                           # maintenance: listing never reads data (atime)
                           "MNT-005",
                           # authoring: init never replaces an existing manifest
                           "AUT-001",
                           # chunk manifests: concatenation compares values read from files
                           "CHK-024",
                           # appends: the first slice's CF encoding kept (read back by xarray,
                           # zarr-python and tensorstore, test_append.py)
                           "APP-013",
                           # reliability: crash sweeps and hostile inputs (test_chaos.py,
                           # test_hostile.py) -- processes killed, links, servers
                           "STO-012", "STO-013", "STO-014", "LCK-007", "FET-017", "FET-018",
                           "FET-022",
                           # installation: a missing optional library (test_optional.py)
                           "DIAG-020",
                           # integrations: outside tools read what is written (GitHub's and
                           # SARIF's formats, pre-commit, taplo, xarray, HTML parsers, shells)
                           "DIAG-010", "DIAG-011", "INT-001", "INT-010", "INT-020",
                           "INT-030", "INT-040",
                           # interruption and the command line (test_interrupt.py,
                           # test_cli_fuzz.py, test_lock.py): real SIGINTs and processes
                           "LCK-004", "LCK-008", "FET-023", "STO-015", "DIAG-006",
                           # trust and secrets (test_trust.py, test_clobber.py,
                           # test_hostile_manifest.py): refusing before anything runs, never
                           # replacing a file, the lock's publish line, option injection
                           "TRU-005", "STO-018", "LCK-009", "SEC-004"}, behavioural
