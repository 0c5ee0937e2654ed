"""Hypothesis properties for the config, state and sidecar documents."""

from __future__ import annotations

import tomllib

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamanifest.check import check_text
from datamanifest.errors import CODES
from datamanifest.spec import paramhash
from datamanifest.spec.canonical import dumps
from datamanifest.spec.documents import MODELS, NORMALIZERS

from .conftest import examples

path_st = st.from_regex(r"(/|~/|\$[a-z]+/)?[a-z0-9_]{1,8}(/[a-z0-9_.]{1,8}){0,3}", fullmatch=True)
symbol_st = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s not in ("datasets_dir", "datacache_dir", "datasets_pools", "datacache_pools",
                        "project", "canonical", "lock_stale_age", "default_remote"))


@st.composite
def storage_tables(draw, with_hosts=True):
    t: dict = {}
    if draw(st.booleans()):
        t["datasets_dir"] = draw(path_st)
    if draw(st.booleans()):
        t["datasets_pools"] = draw(st.lists(path_st, max_size=3))
    if draw(st.booleans()):
        t["lock_stale_age"] = draw(st.one_of(st.integers(1, 600), st.floats(0.5, 600)))
    if draw(st.booleans()):
        t["canonical"] = draw(st.one_of(st.booleans(), st.sampled_from(["yes", "Off", "1"])))
    for name in draw(st.lists(symbol_st, max_size=2, unique=True)):
        t[name] = draw(path_st)
    if with_hosts and draw(st.booleans()):
        t["_HOST"] = draw(st.dictionaries(st.sampled_from(["login*", "node[0-9]*", "gpu-?"]),
                                          storage_tables(with_hosts=False), max_size=2))
    return t


hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
key_st = st.from_regex(r"[a-z0-9.]{1,10}(/[a-z0-9._-]{1,10}){0,3}", fullmatch=True)


@st.composite
def state_docs(draw):
    datasets = {}
    for key in draw(st.lists(key_st, max_size=4, unique=True)):
        rec = {"storage_path": draw(path_st)}
        if draw(st.booleans()):
            h = draw(hex64)
            rec["sha256"], rec["checksum"] = h, f"sha256:{h}"
        if draw(st.booleans()):
            rec["size"] = draw(st.integers(0, 2**40))
        datasets[key] = rec
    doc = {"_META": {"schema": 5}}
    if datasets:
        doc["datasets"] = datasets
    return doc


param_value = st.recursive(
    st.one_of(st.text(max_size=6), st.integers(-10**9, 10**9), st.booleans(),
              st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), inner,
                                            max_size=3)), max_leaves=8)


@st.composite
def config_sidecars(draw):
    table = draw(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
                                 param_value, max_size=4))
    meta = {"schema": 1, "cachetype": draw(st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6}){0,2}",
                                                         fullmatch=True)),
            "hash": paramhash.parameter_hash(table)}
    if draw(st.booleans()):
        meta["version"] = draw(st.from_regex(r"[0-9]{1,3}", fullmatch=True))
    return {**table, "_META": meta}


metadata_docs = st.fixed_dictionaries({"_META": st.fixed_dictionaries(
    {"schema": st.just(1)},
    optional={"created": st.just("2026-11-21T06:00:00Z"), "tool": st.text(max_size=10),
              "host": st.text(max_size=8)}),
}, optional={"git": st.fixed_dictionaries({}, optional={"commit": st.text("0123456789abcdef", max_size=8),
                                                       "dirty": st.booleans()})})

GENERATORS = {"config": storage_tables(), "state": state_docs(),
              "config-sidecar": config_sidecars(), "metadata-sidecar": metadata_docs}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(GENERATORS)).flatmap(lambda t: st.tuples(st.just(t), GENERATORS[t])))
def test_documents_round_trip_and_check_clean(pair):
    doc_type, doc = pair
    text = tomli_w.dumps(doc)
    result = check_text(text, "doc.toml", doc_type)
    assert result.ok and not result.warnings, [d.render() for d in result.diagnostics]
    parsed = tomllib.loads(text)
    assert parsed == doc
    MODELS[doc_type].model_validate(parsed)
    NORMALIZERS[doc_type](parsed)  # never raises on a valid document
    once = dumps(parsed, doc_type)
    assert dumps(tomllib.loads(once), doc_type) == once  # canonical form is idempotent
    assert tomllib.loads(once) == doc


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(GENERATORS)).flatmap(lambda t: st.tuples(st.just(t), GENERATORS[t])),
       st.data())
def test_document_mutations_never_raise(pair, data):
    doc_type, doc = pair
    raw = bytearray(tomli_w.dumps(doc).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if raw and data.draw(st.booleans()):
            raw[pos] = data.draw(st.sampled_from(b'"[]{}=,.#\n\'\\x0_5-@'))
        else:
            raw.insert(pos, data.draw(st.integers(0, 127)))
    result = check_text(raw.decode("utf-8", errors="replace"), "m.toml", doc_type)
    for d in result.diagnostics:
        assert d.code in CODES and d.line and d.column and d.message


@settings(max_examples=60, deadline=None)
@given(config_sidecars(), st.text(min_size=1, max_size=5))
def test_sidecar_with_changed_key_table_is_not_a_hit(doc, value):
    changed = {**doc, "zz_extra": value}
    result = check_text(tomli_w.dumps(changed), "config.toml", "config-sidecar")
    assert [d.code for d in result.errors] == ["DM111"]
