"""The conformance suite, its runner and protocol, and the hash/shell algorithms' properties."""

from __future__ import annotations

import io
import json
import sys

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from datamanifest.conformance import build_index, checksums, load_cases, render_index, run
from datamanifest.spec import paramhash, shell

from .conftest import ROOT, examples, run_cli

FIX = ROOT / "fixtures"


def test_index_and_checksums_are_current():
    index = render_index(build_index(FIX))
    assert (FIX / "index.json").read_text(encoding="utf-8") == index
    assert (FIX / "SHA256SUMS").read_text(encoding="utf-8") == checksums(FIX, {"index.json": index})


def test_case_counts_and_ids():
    cases = load_cases(FIX)
    kinds = {}
    for c in cases:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
        assert c.rules and c.since == 1
    assert len({c.id for c in cases}) == len(cases)
    assert kinds["parse"] >= 15 and kinds["reject"] >= 15
    assert kinds["key"] >= 20 and kinds["hash"] >= 20 and kinds["shell"] >= 20
    assert kinds["resolve"] >= 20 and len(cases) >= 150
    assert {c.type for c in cases if c.kind in ("parse", "reject")} == {
        "manifest", "config", "state", "config-sidecar", "metadata-sidecar", "append-config"}


def test_our_implementation_passes_every_case_in_process():
    out = io.StringIO()
    result = run(FIX, out=out)
    assert result.failed == 0, out.getvalue()
    assert out.getvalue().splitlines()[-1] == f"{result.passed} passed, 0 failed"


def _sample(kind: str) -> list[str]:
    """The first and last case of ``kind`` and every 8th between (test_the_suite_passes_
    in_process answers every case; this checks the protocol through real processes)."""
    ids = [c.id for c in load_cases(FIX) if c.kind == kind]
    return sorted(set(ids[::8]) | {ids[-1]})


@pytest.mark.parametrize("kind", sorted({c.kind for c in load_cases(FIX)}))
def test_protocol_over_subprocess_through_the_cli(kind):
    impl = f"{sys.executable} -m datamanifest conformance serve"
    ids = _sample(kind)
    args = [a for i in ids for a in ("--case", i)]
    proc = run_cli("conformance", "run", "--impl", impl, "--fixtures", str(FIX), *args,
                   timeout=600)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip().endswith(f"{len(ids)} passed, 0 failed"), proc.stdout


def test_runner_reports_failures_and_skips(tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text("import json,sys\nr=json.load(sys.stdin)\n"
                     "sys.exit(3) if r['kind']!='shell' else print(json.dumps({'argv':['x']}))\n")
    proc = run_cli("conformance", "run", "--impl", f"{sys.executable} {wrong}",
                   "--fixtures", str(FIX), "--only", "shell", "--only", "key")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("0 passed, ") and lines[-1].endswith(" skipped")
    assert any(l.startswith("FAIL shell/curl-basic [shell; SH-002") for l in lines)


def test_serve_answers_one_request():
    req = json.dumps({"kind": "key", "uri": "https://h.org/a.csv", "version": "v1"})
    proc = run_cli("conformance", "serve", input=req)
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"key": "h.org/a.csv#v1"}
    assert run_cli("conformance", "serve", input='{"kind": "resolve"}').returncode == 3
    assert run_cli("conformance", "serve", input="not json").returncode == 2


# -- properties of the algorithms --------------------------------------------------------------------
json_scalar = st.one_of(st.text(max_size=8), st.integers(-2**63, 2**63 - 1), st.booleans(),
                        st.floats(allow_nan=False, allow_infinity=False))
params = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(st.text(max_size=6), params, max_size=6), st.randoms())
def test_hash_ignores_key_order(table, rnd):
    def shuffled(v):
        if isinstance(v, dict):
            items = list(v.items())
            rnd.shuffle(items)
            return {k: shuffled(x) for k, x in items}
        if isinstance(v, list):
            return [shuffled(x) for x in v]
        return v
    assert paramhash.parameter_hash(shuffled(table)) == paramhash.parameter_hash(table)


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(st.text(max_size=6), params, max_size=6))
def test_canonical_json_reads_back_to_the_same_value(table):
    text = paramhash.canonical_json(table)
    assert json.loads(text) == table
    assert text == json.dumps(table, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=examples(500), deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_form_round_trips(x):
    text = paramhash.format_float(x)
    assert float(text) == x and (text.startswith("-") == (str(x).startswith("-")))
    assert "." in text or "e" in text


@settings(max_examples=examples(300), deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_shell_values_are_never_split_or_reexpanded(uri, path):
    argv = shell.to_argv("curl -o $download_path $uri", {"uri": uri, "download_path": path})
    assert argv == ["curl", "-o", path, uri]
