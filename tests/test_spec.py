"""The spec's pure algorithms: key derivation, checksums, symbols, positions."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from datamanifest import schemas
from datamanifest.spec import checksum, keys, storage
from datamanifest.spec._locate import locate
from datamanifest.spec.manifest import BINDING_PATTERN

KEY_VECTORS = [
    ("https://data.example.org/a/b.csv", "", "data.example.org/a/b.csv"),
    ("https://User:pw@Data.Example.org:8443/a/b.csv#frag", "", "data.example.org/a/b.csv"),
    ("https://h.org/x.nc", "v2", "h.org/x.nc#v2"),
    ("https://h.org/export?format=zip", "", "h.org/export"),
    ("https://h.org/q?b=2&a=1", "", "h.org/q-q" + __import__("hashlib").sha256(b"b=2&a=1").hexdigest()[:12]),
    ("file:///srv/data/x.csv", "", "srv/data/x.csv"),
    ("./inputs/x.csv", "", "inputs/x.csv"),
    ("inputs/x.csv", "", "inputs/x.csv"),
    ("https://h.org/dir/", "", "h.org/dir"),
]


@pytest.mark.parametrize("uri,version,expected", KEY_VECTORS)
def test_derive_key_vectors(uri, version, expected):
    assert keys.derive_key(uri, (), version) == expected


@pytest.mark.parametrize("uri", ["../x.csv", "https://h.org/a//b", "https://h.org/a/../b",
                                 "https://h.org/x.lock", "https://a.ex[mple.org/x"])
def test_derive_key_rejects(uri):
    with pytest.raises(keys.UnsafeKey):
        keys.derive_key(uri)


def test_version_with_separator_rejected():
    with pytest.raises(keys.UnsafeKey):
        keys.derive_key("https://h.org/x", (), "a/b")


def test_key_pattern_matches_check_key():
    rx = re.compile(keys.KEY_PATTERN)
    samples = ["a", "a/b", "a/./b", "a/../b", "/a", "a//b", "a/", "C:/x", "c:x", "a\\b",
               "a/b.tmp", "x.complete", "é/ü#v1", "a\x01", ".hidden/x", "..a/b..", ""]
    for s in samples:
        try:
            keys.check_key(s)
            ok = True
        except keys.UnsafeKey:
            ok = False
        assert bool(rx.match(s)) == (ok or s == ""), s


def test_extracted_key():
    assert keys.extracted_key("h/a.tar.gz") == "h/a"
    assert keys.extracted_key("h/a.TGZ") == "h/a"
    assert keys.extracted_key("h/a.zip") == "h/a"
    assert keys.extracted_key("h/a.zip#v2") == "h/a.zip#v2.d"
    assert keys.extracted_key("h/export") == "h/export.d"


def test_checksum_parse_and_explain():
    assert str(checksum.parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")) \
        == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert checksum.parse("") is None
    assert checksum.explain_invalid("crc32:00")[0] == "DM021"
    assert checksum.explain_invalid("sha256:zz")[0] == "DM020"
    with pytest.raises(ValueError):
        checksum.parse("sha256:abc")


def test_symbols():
    syms = {"a": "$b/x", "b": "/root", "loop": "$loop2", "loop2": "$loop"}
    assert storage.expand("$a/${b}/$$lit", syms) == "/root/x//root/$lit"
    with pytest.raises(storage.SymbolError, match="cycle"):
        storage.expand("$loop", syms)
    with pytest.raises(storage.SymbolError, match="unknown"):
        storage.expand("$nope", syms)
    assert storage.is_keyed("$datasets_dir/$key") and not storage.is_keyed("/data/x")


def test_schema_patterns_equal_code_constants():
    ds = schemas.load("manifest")["$defs"]["dataset"]["properties"]
    assert ds["checksum"]["pattern"] == checksum.CHECKSUM_PATTERN
    assert ds["sha256"]["pattern"] == checksum.SHA256_PATTERN
    assert ds["key"]["pattern"] == keys.KEY_PATTERN
    assert ds["storage_path"]["pattern"] == storage.STORAGE_PATH_PATTERN
    binding = schemas.load("manifest")["$defs"]["binding"]["oneOf"]
    assert binding[0]["pattern"] == BINDING_PATTERN == binding[1]["properties"]["ref"]["pattern"]


def test_schemas_are_valid_draft_2020_12():
    import jsonschema

    for name in schemas.names():
        s = schemas.load(name)
        assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert s["$id"].endswith(f"{name}.v1.json")
        jsonschema.Draft202012Validator.check_schema(s)


LOCATE_DOC = '''\
# comment
[_META]
schema = 1
[a]
uri = "x"  # c
"quoted key" = 'lit'
aliases = [
  "one",   # c
  "two",
]
t = { x = 1, y = { z = "q" } }
dotted.inner = true
ml = """
multi "" line
"""
[[arr]]
n = 1
[[arr]]
n = 2
[arr.sub]
k = "v"
'''


def test_locate_positions():
    tomllib.loads(LOCATE_DOC)
    sp = locate(LOCATE_DOC)
    assert (sp[("_META", "schema")].key_line, sp[("_META", "schema")].value_col) == (3, 10)
    assert (sp[("a",)].key_line, sp[("a",)].key_col) == (4, 1)
    assert (sp[("a", "quoted key")].key_line, sp[("a", "quoted key")].value_col) == (6, 16)
    assert (sp[("a", "aliases", 1)].value_line, sp[("a", "aliases", 1)].value_col) == (9, 3)
    assert (sp[("a", "t", "y", "z")].value_line, sp[("a", "t", "y", "z")].value_col) == (11, 24)
    assert sp[("a", "dotted", "inner")].value_col == 16
    assert sp[("a", "ml")].value_line == 13
    assert sp[("arr", 0, "n")].value_line == 17
    assert sp[("arr", 1, "n")].value_line == 19
    assert sp[("arr", 1, "sub", "k")].value_line == 21


def test_state_schema_accepts_written_state(tmp_path):
    from datamanifest.store.state import DatasetRecord, read_state, update_state

    p = tmp_path / ".datamanifest" / "state.toml"
    p.parent.mkdir()
    p.write_text('[_META]\nschema = 5\n\n[datacache."mod.f@1".instances]\n'
                 f'"{"a" * 64}" = "/x"\n')
    update_state(p, {"h/a.csv": DatasetRecord(storage_path="store/h/a.csv", sha256="b" * 64,
                                              checksum="sha256:" + "b" * 64, size=3)})
    update_state(p, {"h/b.csv": DatasetRecord(storage_path="store/h/b.csv")})
    data = tomllib.loads(p.read_text())
    assert schemas.validator("state").is_valid(data)
    assert set(data["datasets"]) == {"h/a.csv", "h/b.csv"}
    assert data["datacache"]["mod.f@1"]["instances"]["a" * 64] == "/x"  # foreign tables kept
    assert (p.parent / ".gitignore").read_text() == "*\n"
    assert read_state(p).datasets["h/a.csv"].size == 3


def test_wheel_ships_the_schemas(tmp_path):
    """The installed package finds its schemas without the source tree."""
    import subprocess
    import sys
    import zipfile

    from .conftest import ROOT

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    wheel = next(tmp_path.glob("datamanifest-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "datamanifest/schemas/manifest.v1.json" in names
    assert "datamanifest/schemas/state.v1.json" in names
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from datamanifest import schemas; "
            "d = schemas.schema_dir(); assert str(d).startswith(sys.argv[1]), d; "
            "print(schemas.load('manifest')['$id'])")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(target)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.dumps(out.stdout.strip()).endswith('manifest.v1.json"')


def test_long_requires_chain_and_cycle_do_not_recurse():
    from datamanifest.check import check_text
    from datamanifest.spec.manifest import Manifest

    n = 5000
    lines = []
    for i in range(n):
        req = f'requires = ["d{i + 1}"]' if i + 1 < n else 'requires = ["d0"]'
        lines += [f"[d{i}]", f'uri = "https://h.org/{i}.csv"', req, ""]
    result = check_text("\n".join(lines))
    assert [d.code for d in result.errors] == ["DM041"]
    chain = "\n".join(lines).replace('requires = ["d0"]', "")
    result = check_text(chain)
    assert result.ok
    order = result.manifest.order()
    assert order[0] == f"d{n - 1}" and order[-1] == "d0" and len(order) == n
    assert Manifest.from_dict(result.data).order(["d4998"]) == ["d4999", "d4998"]


def test_schemas_load_in_check_jsonschema():
    """An independent validator (check-jsonschema, reading TOML itself) agrees on the fixtures."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from .conftest import ROOT

    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    fixtures = ROOT / "fixtures"
    for doc_type, schema_file in [("manifest", "manifest.v1.json"), ("config", "config.v1.json"),
                                  ("state", "state.v1.json"),
                                  ("config-sidecar", "config-sidecar.v1.json"),
                                  ("metadata-sidecar", "metadata-sidecar.v1.json")]:
        valid = sorted(str(p) for p in (fixtures / doc_type / "valid").glob("*.toml")
                       if p.stem != "legacy-schema-4")
        proc = subprocess.run([exe, "--schemafile", str(ROOT / "schemas" / schema_file), *valid],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        bad = []
        for f in sorted((fixtures / doc_type / "invalid").glob("*.toml")):
            exp = json.loads(f.with_name(f.stem + ".expected.json").read_text())
            if exp["layer"] != "schema" or f.stem == "datetime-parameter":
                continue  # check-jsonschema reads date-times as strings (SCHEMA.md VAL-004)
            bad.append(str(f))
        # one run over every invalid file: each must be reported (its own errors)
        proc = subprocess.run([exe, "--schemafile", str(ROOT / "schemas" / schema_file),
                               "-o", "json", *bad], capture_output=True, text=True)
        assert proc.returncode == 1, proc.stdout
        rejected = {e["filename"] for e in json.loads(proc.stdout)["errors"]}
        assert rejected == set(bad), set(bad) - rejected
