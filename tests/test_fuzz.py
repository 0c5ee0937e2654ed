"""Fuzzing every document type with Hypothesis (issue 13; a budget of bench/fuzz.py's
10,000 documents per type): check (text and JSON), format, migrate and the loaders raise
only coded errors with a line:column inside the file, and format re-parses to the same
model (datamanifest.testing.fuzz.examine)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamanifest.testing import fuzz


@pytest.mark.parametrize("doc_type", fuzz.TYPES)
def test_mutated_documents_get_located_coded_diagnostics(doc_type):
    seeds = fuzz.seeds()[doc_type]
    assert seeds, f"no seed documents of type {doc_type} in fixtures/"

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(seeds), st.data())
    def one(seed_text, data):
        text = fuzz.mutate(data, doc_type, seed_text)
        assert fuzz.examine(doc_type, text) == []

    one()


@pytest.mark.parametrize("doc_type, text", [
    # found by bench/fuzz.py: each raised a traceback before it was fixed
    ("manifest", '[[_META]\nschema = 1\n'),                       # migrate: tomlkit's error
    ("manifest", '"" = 1\n[_META]\nschema = 1\n'),                # an empty dataset name
    ("manifest", '[_META]\nschema = 1\n\n[a]\nuri = "x"\n\x00'),  # a NUL byte
    ("tree-manifest", '{"schemaVersion": 2, "fields": ["size", "digest", "type"], '
                      '"algorithm": "tree-sha256", "entries": {"a": ["${", "ab", "file"]}}'),
])
def test_inputs_the_fuzzer_found(doc_type, text):
    assert fuzz.examine(doc_type, text) == []


def test_the_oracle_sees_a_traceback():
    problems: list[str] = []
    fuzz._coded(lambda: int("x"), "probe", problems)
    assert problems and problems[0].startswith("probe: ValueError")
