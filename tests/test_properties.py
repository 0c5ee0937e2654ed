"""Hypothesis: manifests round-trip, and no mutation makes `check` raise."""

from __future__ import annotations

import pytest

import tomllib

import tomli_w
import tomlkit
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from datamanifest import schemas
from datamanifest.check import check_text
from datamanifest.errors import CODES
from datamanifest.spec.checksum import ALGORITHMS
from datamanifest.spec.manifest import Manifest, validate_structure

from .conftest import examples

name_st = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
segment = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,8}", fullmatch=True).filter(
    lambda s: not s.endswith((".tmp", ".lock", ".complete", ".part")))
uri_st = st.builds(lambda h, p: f"https://{h}.example.org/{'/'.join(p)}",
                   st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.lists(segment, min_size=1, max_size=4))
checksum_st = st.one_of(
    st.just(""),
    st.sampled_from(sorted(ALGORITHMS)).flatmap(
        lambda a: st.text("0123456789abcdef", min_size=ALGORITHMS[a], max_size=ALGORITHMS[a]).map(
            lambda h: f"{a}:{h}")),
)
scalar = st.one_of(st.text(max_size=10), st.integers(-10**6, 10**6), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False))
foreign = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), scalar, max_size=3)


@st.composite
def manifests(draw):
    names = draw(st.lists(name_st, min_size=1, max_size=6, unique=True))
    doc: dict = {}
    if draw(st.booleans()):
        doc["_META"] = {"schema": 1}
    if draw(st.booleans()):
        doc["_FUTURE"] = draw(foreign)
    if draw(st.booleans()):
        doc["_LANG"] = {"r": {"loaders": {"csv": "readr:read_csv"}}}
    for i, n in enumerate(names):
        ds: dict = {"uri": draw(uri_st) + f"/{n}"}
        if draw(st.booleans()):
            ds["checksum"] = draw(checksum_st)
        if draw(st.booleans()):
            ds["description"] = draw(st.text(max_size=30))
        if draw(st.booleans()):
            ds["version"] = draw(st.from_regex(r"v[0-9]{1,3}", fullmatch=True))
        for flag in ("skip_checksum", "lazy_access", "delegate"):
            if draw(st.booleans()):
                ds[flag] = draw(st.booleans())
        if i and draw(st.booleans()):
            ds["requires"] = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=3))
        if draw(st.booleans()):
            ds["loader"] = draw(st.sampled_from(
                ["pandas:read_csv", {"ref": "xarray:open_dataset", "kwargs": {"engine": "h5netcdf"}}]))
        if draw(st.booleans()):
            ds["_LANG"] = {"julia": {"loader": "CSV:read"}}
        if draw(st.booleans()):
            ds["_private"] = draw(foreign)
        doc[n] = ds
    return doc


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_valid_manifest_round_trips(doc):
    text = tomli_w.dumps(doc)
    result = check_text(text, "gen.toml")
    assert result.ok, [d.render() for d in result.diagnostics]
    model = Manifest.from_dict(tomllib.loads(text))
    assert model.to_dict() == doc
    again = Manifest.from_dict(tomllib.loads(tomli_w.dumps(model.to_dict())))
    assert again == model


def _assert_diagnostics_well_formed(text: str):
    result = check_text(text, "m.toml")  # must not raise
    for d in result.diagnostics:
        assert d.code in CODES
        assert d.line is not None and d.line >= 1 and d.column is not None and d.column >= 1
        assert d.message


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.data())
def test_byte_mutations_never_raise(doc, data):
    raw = bytearray(tomli_w.dumps(doc).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.sampled_from(b'"[]{}=,.#\n\'\\ax0_-$'))
        elif op == "delete" and raw:
            del raw[pos]
        else:
            raw.insert(pos, data.draw(st.integers(0, 127)))
    text = raw.decode("utf-8", errors="replace")
    _assert_diagnostics_well_formed(text)


structural_value = st.one_of(scalar, st.lists(scalar, max_size=3), foreign,
                             st.just(""), st.just("../x"), st.just("sha256:xyz"))


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.data())
def test_structural_mutations_report_located_diagnostics(doc, data):
    names = [k for k in doc if not k.startswith("_")]
    target = data.draw(st.sampled_from(names))
    field = data.draw(st.sampled_from(
        ["uri", "uris", "checksum", "key", "requires", "aliases", "extract", "loader", "storage_path",
         "version", "typo_field", "doi", "sha256"]))
    value = data.draw(structural_value)
    mutated = tomlkit.parse(tomli_w.dumps(doc))
    mutated[target][field] = value
    text = tomlkit.dumps(mutated)
    assume(text)
    _assert_diagnostics_well_formed(text)
    # VAL-002: the models and the JSON Schema give the same structural verdict
    data = tomllib.loads(text)
    try:
        validate_structure(data)
        models_ok = True
    except ValueError:
        models_ok = False
    assert schemas.validator("manifest").is_valid(data) == models_ok, (field, value)


@settings(max_examples=examples(200), deadline=None)
@given(st.dictionaries(
    st.sampled_from(["uri", "uris", "checksum", "sha256", "key", "storage_path", "requires",
                     "aliases", "extract", "fetcher", "loader", "version", "_x", "typo", "_LANG",
                     "delegate", "downloads", "format"]),
    st.one_of(structural_value, st.just({"ref": "a:b"}), st.just({"ref": "a:b", "code": 1}),
              st.just("m:f"), st.just({"julia": {}}), st.just(["a", 1])),
    max_size=5))
@pytest.mark.covers("VAL-002")
def test_models_agree_with_json_schema(table):
    data = {"_META": {"schema": 1}, "ds": table}
    try:
        validate_structure(data)
        models_ok = True
    except ValueError:
        models_ok = False
    assert schemas.validator("manifest").is_valid(data) == models_ok


storage_value = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.booleans(), st.floats(-5, 5),
                          st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=2))


@settings(max_examples=examples(200), deadline=None)
@given(st.dictionaries(
    st.sampled_from(["datasets_dir", "datacache_dir", "datasets_pools", "datacache_pools",
                     "project", "canonical", "lock_stale_age", "default_remote", "scratch",
                     "_other"]),
    storage_value, max_size=4),
    st.dictionaries(st.sampled_from(["login*", "node[0-9]"]),
                    st.dictionaries(st.sampled_from(["datasets_dir", "lock_stale_age", "sym"]),
                                    storage_value, max_size=2), max_size=2))
def test_storage_models_agree_with_json_schema(table, hosts):
    if hosts:
        table = {**table, "_HOST": hosts}
    data = {"_STORAGE": table}
    try:
        validate_structure(data)
        models_ok = True
    except ValueError:
        models_ok = False
    assert schemas.validator("manifest").is_valid(data) == models_ok, data
    assert schemas.validator("config").is_valid(table) == models_ok, table


_URL_CHARS = st.sampled_from(list("abcAZ09._~-:@/?#[]% \t\u00e9\x7f+"))


@settings(max_examples=examples(3000), deadline=None)
@given(st.sampled_from(["https://", "http://", "s3://", "FILE://", "git+ssh://", "x://"]),
       st.text(alphabet=_URL_CHARS, max_size=30))
def test_plain_url_fast_path_equals_urlsplit(scheme, rest):
    """KEY-002 reads URLs with urlsplit; the fast path for plain ones must give its answer."""
    from urllib.parse import urlsplit

    from datamanifest.spec import keys

    uri = scheme + rest
    m = keys._PLAIN_URL.fullmatch(uri)
    if m is None:
        return
    assert tuple(keys._split.__wrapped__(uri)) == tuple(urlsplit(uri))
    assert (urlsplit(uri).hostname or "").lower() == m.group(2).lower()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) |
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=5),
    max_leaves=30)


@settings(max_examples=examples(2000), deadline=None)
@given(st.dictionaries(st.text(max_size=6), _json_values, max_size=6))
def test_chunk_manifest_checksum_text_is_the_canonical_json(doc):
    """CHK-008: the C encoder used for the checksum writes exactly the canonical JSON."""
    import json

    from datamanifest.spec.virtual import document_json

    assert json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False) == document_json(doc)
