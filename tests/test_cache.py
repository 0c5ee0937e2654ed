"""Produce-or-load (SCHEMA.md §21): identity, layout, formats, pools, legacy indexes, and
concurrency and failure with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

import datamanifest
from datamanifest.cache import artifact as artifact_mod
from datamanifest.cache import context as context_mod
from datamanifest.errors import ProduceError
from datamanifest.spec import cache as spec
from datamanifest.store import state as state_mod
from datamanifest.store.state import read_state

MODULE = '''
import os, time
import datamanifest

COUNTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.log")

def _count(tag):
    fd = os.open(COUNTER, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (tag + "\\n").encode())
    os.close(fd)

@datamanifest.cached
def slow(x, delay=0.0):
    _count(f"slow {x}")
    time.sleep(delay)
    return {"x": x, "pid": os.getpid()}

@datamanifest.cached
def boom(x):
    _count(f"boom {x}")
    raise RuntimeError("the function failed")

@datamanifest.cached
def hang(x, started=""):
    _count(f"hang {x}")
    open(started, "w").close()
    time.sleep(120)
    return x
'''


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a producer module; the working directory of the test."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "datamanifest.toml").write_text(
        '[_META]\nschema = 1\n\n[_STORAGE]\ndatacache_dir = "cache"\n')
    (root / "prodmod.py").write_text(MODULE)
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    for k in list(os.environ):
        if k.startswith("DATAMANIFEST_"):
            monkeypatch.delenv(k)
    sys.modules.pop("prodmod", None)
    from datamanifest.cache import decorator

    monkeypatch.setattr(decorator, "_CLAIMS", {})  # each test declares its own producers
    return root


def calls(root: Path) -> list[str]:
    try:
        return (root / "calls.log").read_text().splitlines()
    except FileNotFoundError:
        return []


def instances(root: Path) -> dict[str, str]:
    st = read_state(root / ".datamanifest" / "state.toml")
    out = {}
    for rec in st.datacache.values():
        out.update(rec["instances"])
    return out


def run_py(root: Path, code: str, env: dict | None = None, **kw) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DATAMANIFEST_")}
    full["PYTHONPATH"] = str(root)
    full.update(env or {})
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=root, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# -- identity and key table -----------------------------------------------------------------
@pytest.mark.covers("PAR-009", "SEC-002")
def test_a_credential_in_a_parameter_is_not_part_of_the_identity_nor_written(prod: Path):
    seen = []

    @datamanifest.cached(cachetype="t.secret")
    def f(url, mirrors=()):
        seen.append(url)
        return len(url)

    url = "https://alice:s3cret@h.example.org/a.nc"
    assert f(url, mirrors=["https://h.example.org/b.nc?sig=tok3n"]) == len(url)
    assert seen == [url]  # the function received the value as given
    assert f.key_table(url) == {"url": "https://alice:****@h.example.org/a.nc", "mirrors": ()}
    # another password for the same data is the same produced dataset: a hit
    other = "https://alice:0ther@h.example.org/a.nc"
    assert f(other, mirrors=["https://h.example.org/b.nc?sig=0ther"]) == len(url)
    assert seen == [url]
    written = b"".join(p.read_bytes() for p in prod.rglob("*")
                       if p.is_file() and p.name not in ("prodmod.py", "datamanifest.toml"))
    assert b"s3cret" not in written and b"tok3n" not in written
    assert b"alice:****@" in written
    # SC-003: the written key table hashes to the recorded hash, so `check` accepts it
    config = next((prod / "cache").rglob("config.toml"))
    r = subprocess.run([sys.executable, "-m", "datamanifest", "check", str(config)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.covers("PRD-002")
def test_defaults_are_bound_and_hashed(prod: Path):
    @datamanifest.cached(cachetype="t.defaults")
    def f(x, y=1, _knob=0):
        return x + y

    assert f.key_table(2) == {"x": 2, "y": 1}  # the default is bound, the knob left out
    assert f.identity(2) == f.identity(x=2, y=1) == f.identity(2, 1, _knob=9)
    assert f(2) == 3 and f(x=2, y=1) == 3
    assert len(calls(prod)) == 0 and len(instances(prod)) == 1

    @datamanifest.cached(cachetype="t.defaults2")
    def g(x, y=1):
        return x

    @datamanifest.cached(cachetype="t.defaults2", _claim=False) if False else \
        datamanifest.cached(cachetype="t.defaults3")
    def g2(x, y=2):  # the "same" function with another default: another hash
        return x

    assert g.identity(1).hash != g2.identity(1).hash or g.cachetype != g2.cachetype
    assert spec.identity("c", {"x": 1, "y": 1}).hash != spec.identity("c", {"x": 1, "y": 2}).hash


@pytest.mark.covers("PRD-006")
def test_reserved_names_of_other_tools_are_ordinary_parameters(prod: Path):
    @datamanifest.cached(cachetype="t.reserved")
    def f(cached=True, cache_dir="", key="k"):
        return [cached, cache_dir, key]

    assert f(False, "elsewhere") == [False, "elsewhere", "k"]
    assert f.key_table(False, "elsewhere") == {"cached": False, "cache_dir": "elsewhere",
                                               "key": "k"}
    assert f.path(False, "elsewhere").parent == prod / "cache" / "t.reserved"


def test_fast_binding_equals_signature_binding(prod: Path):
    import inspect

    @datamanifest.cached(cachetype="t.bind")
    def f(a, b=2, *, c=3, _d=4):
        return a

    def slow(*args, **kwargs):
        bound = inspect.signature(f.__wrapped__).bind(*args, **kwargs)
        bound.apply_defaults()
        return {k: v for k, v in bound.arguments.items() if not k.startswith("_")}

    for args, kwargs in [((1,), {}), ((1, 5), {}), ((), {"a": 1}), ((1,), {"c": 9}),
                         ((), {"c": 9, "a": 0, "b": 1}), ((1,), {"_d": 0})]:
        assert f.key_table(*args, **kwargs) == slow(*args, **kwargs)
    for args, kwargs in [((), {}), ((1, 2, 3), {}), ((1,), {"a": 2}), ((1,), {"zz": 1})]:
        with pytest.raises(TypeError):
            f.key_table(*args, **kwargs)


def test_var_keyword_members_are_keys(prod: Path):
    @datamanifest.cached(cachetype="t.kw")
    def f(a, **opts):
        return opts

    assert f.key_table(1, b=2, _c=3) == {"a": 1, "b": 2}


@pytest.mark.covers("PRD-003")
def test_value_without_canonical_form_is_DM100_before_running(prod: Path):
    ran = []

    @datamanifest.cached(cachetype="t.nan")
    def f(x, opts=None):
        ran.append(1)

    with pytest.raises(ProduceError) as e:
        f(1, {"a": [1.0, float("nan")]})
    assert e.value.code == "DM100" and "'opts'" in e.value.message and "/a/1" in e.value.message
    with pytest.raises(ProduceError) as e:
        f(object())
    assert e.value.code == "DM100" and "'x'" in e.value.message
    assert ran == [] and not (prod / "cache").exists()
    # a parameter bound to None is absent (PRD-002), never null
    assert f.key_table(1) == f.key_table(1, None) == {"x": 1}


@pytest.mark.covers("PRD-004")
def test_key_selector(prod: Path):
    @datamanifest.cached(cachetype="t.sel", key=["x"])
    def f(x, verbose=False):
        return x

    assert f.identity(1, True) == f.identity(1, False)

    @datamanifest.cached(cachetype="t.sel2", key=lambda t: {"x": round(t["x"], 1)})
    def g(x):
        return x

    assert g.identity(1.01) == g.identity(1.04)
    with pytest.raises(ProduceError) as e:
        datamanifest.cached(cachetype="t.sel3", key=["nope"])(lambda x: x)
    assert e.value.code == "DM113" and "'nope'" in e.value.message


@pytest.mark.covers("PRD-005")
def test_producer_identity_rules(prod: Path):
    with pytest.raises(ProduceError) as e:
        datamanifest.cached(lambda x: x)
    assert e.value.code == "DM113" and "cachetype" in e.value.hint

    def outer():
        @datamanifest.cached
        def inner(x):
            return x
        return inner

    with pytest.raises(ProduceError) as e:
        outer()
    assert e.value.code == "DM113"
    with pytest.raises(ProduceError) as e:
        @datamanifest.cached
        def star(*args):
            return args
    assert e.value.code == "DM113"

    @datamanifest.cached(cachetype="t.claim")
    def one(x):
        return x

    with pytest.raises(ProduceError) as e:
        @datamanifest.cached(cachetype="t.claim")
        def two(x):
            return x
    assert e.value.code == "DM116" and "one" in e.value.message

    @datamanifest.cached(cachetype="t.claim", version="2")  # another version: allowed
    def three(x):
        return x

    import prodmod

    assert prodmod.slow.cachetype == "prodmod.slow" and prodmod.slow.ref == "prodmod:slow"
    with pytest.raises(ProduceError) as e:
        datamanifest.cached(cachetype="a@b")(lambda x: x)
    assert e.value.code == "DM100"
    with pytest.raises(ProduceError) as e:
        datamanifest.cached(cachetype="t.fmt", format="nope")(lambda x: x)
    assert e.value.code == "DM114"


def test_main_script_without_module_name_needs_a_cachetype(prod: Path):
    script = prod / "script.py"
    script.write_text("import datamanifest\n@datamanifest.cached\ndef f(x):\n    return x\n")
    p = subprocess.run([sys.executable, str(script)], cwd=prod, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(prod)})
    assert p.returncode == 1 and "DM113" in p.stderr and "__main__" in p.stderr
    script.write_text("import datamanifest\n@datamanifest.cached(cachetype='script.f')\n"
                      "def f(x):\n    return x\nprint(f(3))\n")
    p = subprocess.run([sys.executable, str(script)], cwd=prod, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(prod)})
    assert p.returncode == 0 and p.stdout.strip() == "3"


# -- layout and publish -------------------------------------------------------------------------
@pytest.mark.covers("PRD-010", "PRD-011", "PRD-024", "PRD-030")
def test_artifact_layout_sidecars_marker_and_state(prod: Path):
    import prodmod

    value = prodmod.slow(7)
    ident = prodmod.slow.identity(7)
    a = prod / "cache" / "prodmod.slow" / ident.hash
    assert prodmod.slow.path(7) == a
    assert sorted(p.name for p in a.iterdir()) == [".complete", "config.toml", "data.pickle",
                                                    "metadata.toml"]
    assert not a.with_name(a.name + ".tmp").exists() and not a.with_name(a.name + ".lock").exists()
    config = tomllib.loads((a / "config.toml").read_text())
    assert config == {"x": 7, "delay": 0.0, "_META": {"schema": 1, "cachetype": "prodmod.slow",
                                                      "hash": ident.hash}}
    assert (a / "config.toml").read_text().index("[_META]") > 0  # _META last (FMT-001)
    meta = tomllib.loads((a / "metadata.toml").read_text())
    assert meta["_META"]["tool"].startswith("datamanifest ") and meta["_META"]["created"][-1] == "Z"
    assert meta["origin"]["state_file"] == str(prod / ".datamanifest" / "state.toml")
    marker = json.loads((a / ".complete").read_text())
    data = (a / "data.pickle").read_bytes()
    import hashlib

    assert marker == {"formats": {"pickle": {"file": "data.pickle", "size": len(data),
                                             "checksum": "sha256:" + hashlib.sha256(data).hexdigest()}},
                      "config": "sha256:" + hashlib.sha256((a / "config.toml").read_bytes()).hexdigest()}
    rec = read_state(prod / ".datamanifest" / "state.toml").datacache["prodmod.slow"]
    assert rec == {"ref": "prodmod:slow", "format": "pickle", "formats": ["pickle"],
                   "instances": {ident.hash: f"cache/prodmod.slow/{ident.hash}"}}
    assert prodmod.slow(7) == value and calls(prod) == ["slow 7"]


def test_git_provenance_read_without_git_subprocess(prod: Path):
    subprocess.run(["git", "init", "-q", "-b", "trunk"], cwd=prod, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q",
                    "--allow-empty", "-m", "x"], cwd=prod, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=prod, capture_output=True,
                          text=True).stdout.strip()
    import prodmod

    prodmod.slow(1)
    meta = tomllib.loads((prodmod.slow.path(1) / "metadata.toml").read_text())
    assert meta["git"] == {"branch": "trunk", "commit": head}


@pytest.mark.covers("PRD-026")
def test_second_format_added_without_rewriting_sidecars(prod: Path):
    import prodmod

    prodmod.slow(3)
    a = prodmod.slow.path(3)
    before = {n: ((a / n).read_bytes(), (a / n).stat().st_mtime_ns)
              for n in ("config.toml", "metadata.toml")}
    as_json = prodmod.slow.with_options(format="json")
    assert not as_json.exists(3)
    time.sleep(0.01)
    assert as_json(3)["x"] == 3
    assert {n: ((a / n).read_bytes(), (a / n).stat().st_mtime_ns) for n in before} == before
    marker = json.loads((a / ".complete").read_text())
    assert sorted(marker["formats"]) == ["json", "pickle"]
    assert not [p for p in a.iterdir() if p.name.endswith(".tmp")]
    assert prodmod.slow.exists(3) and as_json.exists(3)
    assert calls(prod) == ["slow 3"]  # converted from the stored pickle, not recomputed
    rec = read_state(prod / ".datamanifest" / "state.toml").datacache["prodmod.slow"]
    assert rec["format"] == "pickle" and rec["formats"] == ["json", "pickle"]


def test_ecosystem_artifact_with_empty_marker_is_a_hit_and_gains_digests(prod: Path):
    """An artifact written by the ecosystem's tools (empty .complete) is used as is."""
    import prodmod

    ident = prodmod.slow.identity(5)
    a = prod / "cache" / "prodmod.slow" / ident.hash
    a.mkdir(parents=True)
    (a / "config.toml").write_text(artifact_mod.config_text(ident, {"x": 5, "delay": 0.0}))
    (a / "data.json").write_text('{"x": 5, "from": "ecosystem"}')
    (a / ".complete").write_text("")
    as_json = prodmod.slow.with_options(format="json")
    assert as_json(5) == {"x": 5, "from": "ecosystem"} and calls(prod) == []
    assert prodmod.slow(5)["x"] == 5  # pickle is added next to it
    marker = json.loads((a / ".complete").read_text())
    assert sorted(marker["formats"]) == ["json", "pickle"]


@pytest.mark.covers("PRD-026")
def test_with_options_zarr_converts_the_stored_result_without_warnings(prod: Path):
    """Issue 20 point 9: `f.with_options(format="zarr")(...)` on an existing artifact
    recomputed silently (hours, for a real producer) and leaked a ZarrUserWarning; it now
    converts the stored result, and a stored format that was modified is not a source."""
    import warnings

    import numpy as np
    import xarray as xr

    runs = []

    @datamanifest.cached(cachetype="t.convert", format="nc")
    def field(n: int):
        runs.append(n)
        return xr.Dataset({"t": ("x", np.arange(n, dtype="float64"))})

    first = field(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ZarrUserWarning (nor any other) escapes
        as_zarr = field.with_options(format="zarr")
        got = as_zarr(4)
        assert as_zarr.load(4).t.values.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert runs == [4] and got.load().equals(first.load())
    assert field.with_options(format="pickle").produce(4).converted_from in ("nc", "zarr")
    assert (field.path(4) / "data.zarr").is_dir()
    # a listed format whose bytes changed is not converted from: the function runs
    field(5)
    (field.path(5) / "data.nc").write_bytes(b"not the published bytes")
    assert field.with_options(format="zarr").produce(5).computed is True and runs == [4, 5, 5]


@pytest.mark.covers("PRD-020")
@pytest.mark.parametrize("damage", ["config-corrupt", "config-other-hash", "no-data", "no-marker",
                                    "marker-lists-other"])
def test_damaged_artifact_is_a_miss_never_a_wrong_result(prod: Path, damage: str):
    import prodmod

    prodmod.slow(9)
    a = prodmod.slow.path(9)
    if damage == "config-corrupt":
        (a / "config.toml").write_text("x = [unclosed\n")
    elif damage == "config-other-hash":
        (a / "config.toml").write_text((a / "config.toml").read_text().replace("x = 9", "x = 10"))
    elif damage == "no-data":
        (a / "data.pickle").unlink()
    elif damage == "no-marker":
        (a / ".complete").unlink()
    else:
        (a / ".complete").write_text('{"formats": {"json": {"file": "data.json"}}}')
    assert not prodmod.slow.exists(9)
    assert prodmod.slow(9)["x"] == 9
    assert calls(prod) == ["slow 9", "slow 9"]  # recomputed, and the artifact replaced
    assert prodmod.slow.exists(9) and prodmod.slow(9)["x"] == 9
    assert tomllib.loads((a / "config.toml").read_text())["x"] == 9
    assert not a.with_name(a.name + ".old").exists()


@pytest.mark.covers("PRD-027")
def test_recompute_and_forget(prod: Path):
    import prodmod

    first = prodmod.slow(4)
    second = prodmod.slow.recompute(4)
    assert calls(prod) == ["slow 4", "slow 4"] and first == second
    assert prodmod.slow.forget(4) is True
    assert not prodmod.slow.path(4).exists() and not prodmod.slow.exists(4)
    assert prodmod.slow.identity(4).hash not in instances(prod)
    assert prodmod.slow.forget(4) is False
    with pytest.raises(ProduceError) as e:
        prodmod.slow.load(4)
    assert e.value.code == "DM115"


@pytest.mark.parametrize("fmt,value", [
    ("pickle", {"a": (1, 2)}), ("json", {"a": [1, 2]}), ("toml", {"a": 1, "b": {"c": "d"}}),
    ("txt", "hello\nworld"), ("npy", "array"), ("npz", "arrays"), ("csv", "frame"),
    ("parquet", "frame"), ("nc", "dataset"), ("zarr", "dataset"),
])
def test_formats_round_trip(prod: Path, fmt: str, value):
    import numpy as np

    if value == "array":
        value = np.arange(12.0).reshape(3, 4)
    elif value == "arrays":
        value = {"a": np.arange(3), "b": np.ones((2, 2))}
    elif value in ("frame", "dataset"):
        import pandas as pd

        value = pd.DataFrame({"t": [1, 2, 3], "v": [0.5, 1.5, 2.5]})
        if fmt in ("nc", "zarr"):
            value = value.set_index("t").to_xarray()

    @datamanifest.cached(cachetype=f"t.fmt.{fmt}", format=fmt)
    def f(n):
        return value

    f(1)
    got = f.load(1)
    if fmt in ("npy",):
        np.testing.assert_array_equal(got, value)
    elif fmt == "npz":
        assert sorted(got) == ["a", "b"] and (got["b"] == 1).all()
    elif fmt in ("csv", "parquet"):
        assert got.equals(value)
    elif fmt in ("nc", "zarr"):
        assert got.load().equals(value)
        assert f.path(1).joinpath(f"data.{fmt}").is_dir() == (fmt == "zarr")
    elif fmt == "pickle":
        assert got == value
    else:
        assert got == value
    marker = json.loads((f.path(1) / ".complete").read_text())
    expected = "tree-sha256:" if fmt == "zarr" else "sha256:"
    assert marker["formats"][fmt]["checksum"].startswith(expected)


def test_missing_format_library_names_the_extra(prod: Path):
    fmt = datamanifest.register_format("h5x", lambda v, p: None, lambda p: None,
                                       requires=(("no_such_module_dm", "h5x"),))
    assert fmt.name == "h5x"

    @datamanifest.cached(cachetype="t.h5x", format="h5x")
    def f(x):
        return x

    with pytest.raises(ProduceError) as e:
        f(1)
    assert e.value.code == "DM114" and "datamanifest[h5x]" in e.value.hint
    assert not f.path(1).exists()


# -- failure and concurrency, with real processes ---------------------------------------------------------
@pytest.mark.covers("PRD-025")
def test_raising_function_leaves_nothing(prod: Path):
    import prodmod

    with pytest.raises(RuntimeError, match="the function failed"):
        prodmod.boom(1)
    a = prod / "cache" / "prodmod.boom" / prodmod.boom.identity(1).hash
    assert not a.exists() and not a.with_name(a.name + ".tmp").exists()
    assert not a.with_name(a.name + ".lock").exists()
    assert instances(prod) == {}
    with pytest.raises(RuntimeError):
        prodmod.boom(1)
    assert calls(prod) == ["boom 1", "boom 1"]


@pytest.mark.covers("PRD-024")
def test_eight_processes_same_parameters_compute_once(prod: Path):
    code = """
        import json, prodmod
        print(json.dumps(prodmod.slow(42, delay=1.0)))
    """
    procs = [run_py(prod, code) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    values = [json.loads(o[0]) for o in outs]
    assert calls(prod) == ["slow 42"]
    assert len({json.dumps(v, sort_keys=True) for v in values}) == 1
    assert len(instances(prod)) == 1


def test_threads_same_parameters_compute_once(prod: Path):
    import threading

    import prodmod

    out = []
    threads = [threading.Thread(target=lambda: out.append(prodmod.slow(8, delay=0.3)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls(prod) == ["slow 8"] and len(out) == 4 and all(v == out[0] for v in out)


@pytest.mark.covers("STA-004", "PRD-031")
def test_sixteen_processes_sixty_four_artifacts_all_recorded(prod: Path):
    code = """
        import sys, prodmod
        i = int(sys.argv[1])
        for j in range(4):
            prodmod.slow(i * 4 + j)
    """
    procs = []
    for i in range(16):
        full = {k: v for k, v in os.environ.items() if not k.startswith("DATAMANIFEST_")}
        full["PYTHONPATH"] = str(prod)
        procs.append(subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(i)],
                                      cwd=prod, env=full, stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=180)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert len(instances(prod)) == 64
    assert sorted(calls(prod)) == sorted(f"slow {i}" for i in range(64))


@pytest.mark.covers("PRD-031")
def test_journal_is_folded_into_the_state_file(prod: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(state_mod, "JOURNAL_COMPACT_LINES", 5)
    state = prod / ".datamanifest" / "state.toml"
    state.parent.mkdir()
    state.write_text('[_META]\nschema = 5\n\n[datasets."h/a.csv"]\nstorage_path = "s/a.csv"\n\n'
                     '[other]\nkept = true\n')

    @datamanifest.cached(cachetype="t.fold")
    def f(x):
        return x

    for i in range(12):
        f(i)
    doc = tomllib.loads(state.read_text())
    journal = state.with_name("state.journal")
    lines = journal.read_text().splitlines() if journal.exists() else []
    assert len(lines) < 12 and len(doc["datacache"]["t.fold"]["instances"]) + len(lines) >= 12
    assert doc["datasets"]["h/a.csv"]["storage_path"] == "s/a.csv" and doc["other"] == {"kept": True}
    assert len(instances(prod)) == 12
    # a torn last line (a writer killed mid-append) is ignored
    with open(journal, "a") as fh:
        fh.write('{"table":"datacache","key":"t.fold","hash":"ab')
    assert len(instances(prod)) == 12


@pytest.mark.covers("PRD-025", "LCK-004")
def test_producer_killed_mid_compute_leaves_nothing_complete(prod: Path, tmp_path: Path):
    started = tmp_path / "started"
    env = {"DATAMANIFEST_LOCK_STALE_AGE": "1"}
    p = run_py(prod, f"""
        import prodmod
        prodmod.hang(1, started={str(started)!r})
    """, env=env)
    deadline = time.time() + 30
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert started.exists()
    os.kill(p.pid, signal.SIGKILL)
    p.communicate()
    import prodmod

    a = prod / "cache" / "prodmod.hang" / prodmod.hang.identity(1, started=str(started)).hash
    assert not (a / ".complete").exists() and not a.exists()
    assert a.with_name(a.name + ".lock").exists()  # the dead producer's lock
    assert not prodmod.hang.exists(1, started=str(started))
    # the next call reclaims the stale lock and recomputes (a quick variant of the function)
    q = run_py(prod, f"""
        import prodmod, time
        prodmod.time.sleep = lambda s: None
        print(prodmod.hang(1, started={str(started)!r}))
    """, env=env)
    out, err = q.communicate(timeout=60)
    assert q.returncode == 0, err
    assert out.strip() == "1" and (a / ".complete").exists()
    assert calls(prod) == ["hang 1", "hang 1"]
    assert not a.with_name(a.name + ".lock").exists()


# -- read pools, recorded folders, legacy indexes ----------------------------------------------------
def _publish_into(pool: Path, value, cachetype="t.pool", x=1) -> spec.Identity:
    """Another project, in another process, publishes an artifact into ``pool``."""
    other = pool.parent / f"other-{cachetype}"
    other.mkdir(parents=True)
    (other / "datamanifest.toml").write_text(f'[_STORAGE]\ndatacache_dir = "{pool}"\n')
    p = run_py(other, f"""
        import datamanifest
        @datamanifest.cached(cachetype={cachetype!r})
        def f(x):
            return {value!r}
        f({x!r})
    """, env={"DATAMANIFEST_TRUST": "1"})  # its owner trusts a pool outside its folder (TRU-005)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return spec.identity(cachetype, {"x": x})


@pytest.mark.covers("PRD-021", "PRD-022", "PRD-023")
def test_pool_hit_is_verified_before_loading(prod: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch):
    pool = tmp_path / "pool"
    ident = _publish_into(pool, {"from": "pool"})
    monkeypatch.setenv("DATAMANIFEST_DATACACHE_POOLS", str(pool))
    pool_copy = pool / ident.cache_key
    snapshot = {p: p.read_bytes() for p in pool_copy.iterdir()}

    @datamanifest.cached(cachetype="t.pool")
    def f(x):
        return {"from": "computed"}

    art = f.artifact(1)
    assert art.source == "pool" and art.folder == pool_copy
    assert f(1) == {"from": "pool"}
    assert {p: p.read_bytes() for p in pool_copy.iterdir()} == snapshot  # never written
    assert not (prod / "cache").exists() or not any((prod / "cache").rglob(".complete"))

    # bytes that no longer match the marker are never unpickled: a hostile pickle
    marker_file = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker_file), "w"))

    import pickle

    (pool_copy / "data.pickle").write_bytes(pickle.dumps(Evil()))
    assert not f.exists(1)
    assert f(1) == {"from": "computed"}  # a miss: computed into the project's own store
    assert not marker_file.exists()
    assert f.artifact(1).source == "store"


def test_pool_artifact_without_digest_is_not_a_hit(prod: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    pool = tmp_path / "pool"
    ident = _publish_into(pool, {"from": "pool"}, cachetype="t.pool2")
    (pool / ident.cache_key / ".complete").write_text("")
    monkeypatch.setenv("DATAMANIFEST_DATACACHE_POOLS", str(pool))

    @datamanifest.cached(cachetype="t.pool2")
    def f(x):
        return {"from": "computed"}

    assert f(1) == {"from": "computed"}


@pytest.mark.covers("PRD-032", "STA-009")
def test_legacy_cached_toml_instances_are_hits_and_rewritten_as_schema_5(prod: Path):
    import prodmod

    ident = prodmod.slow.identity(11)
    old = prod / "old-cache" / ident.hash  # a folder the legacy index records
    old.mkdir(parents=True)
    (old / "config.toml").write_text(artifact_mod.config_text(ident, {"x": 11, "delay": 0.0}))
    import pickle

    (old / "data.pickle").write_bytes(pickle.dumps({"x": 11, "legacy": True}))
    (old / ".complete").write_text("")
    (prod / "cached.toml").write_text(textwrap.dedent(f"""\
        [_META]
        schema = 3

        ["prodmod.slow"]
        ref = "prodmod:slow"
        format = "pickle"
        storage_path = "{prod / 'old-cache'}"

        ["prodmod.slow".instances.{ident.hash}]
        x = 11
        """))
    assert prodmod.slow.artifact(11).source == "recorded"
    assert prodmod.slow(11) == {"x": 11, "legacy": True} and calls(prod) == []
    prodmod.slow(12)  # the next write migrates the legacy index
    assert not (prod / "cached.toml").exists() and (prod / "cached.toml.migrated").exists()
    doc = tomllib.loads((prod / ".datamanifest" / "state.toml").read_text())
    assert doc["_META"]["schema"] == 5
    inst = doc["datacache"]["prodmod.slow"]["instances"]
    assert inst[ident.hash] == str(old) and len(inst) == 2
    sys.modules.pop("prodmod", None)
    context_mod._memo.clear()
    assert prodmod.slow(11) == {"x": 11, "legacy": True}


def test_cached_toml_is_checked_as_a_legacy_state_file(prod: Path):
    from datamanifest.spec.documents import detect

    assert detect({}, "/p/cached.toml") == "state"
    assert detect({}, "/p/.datamanifest-state.toml") == "state"
    (prod / "cached.toml").write_text('[_META]\nschema = 4\n\n["m.f".instances]\n'
                                      f'{"a" * 64} = "/x"\n')
    p = subprocess.run([sys.executable, "-m", "datamanifest", "check", "cached.toml"], cwd=prod,
                       capture_output=True, text=True)
    assert "DM093" in p.stdout + p.stderr and "Traceback" not in p.stderr


def test_markers_and_journal_lines_match_their_json_schemas(prod: Path):
    from datamanifest import schemas

    @datamanifest.cached(cachetype="t.schemas")
    def f(x):
        return x

    f(1)
    f.with_options(format="json")(1)
    f.forget(1)
    f(2)
    marker = json.loads((f.path(2) / ".complete").read_text())
    assert list(schemas.validator("produced-marker").iter_errors(marker)) == []
    lines = (prod / ".datamanifest" / "state.journal").read_text().splitlines()
    assert len(lines) == 4 and any('"forget":true' in ln for ln in lines)
    for line in lines:
        assert list(schemas.validator("state-journal-line").iter_errors(json.loads(line))) == []
    state = read_state(prod / ".datamanifest" / "state.toml")
    assert list(schemas.validator("state").iter_errors(state.to_dict())) == []


def test_journal_replay_equals_direct_application():
    """Property: applying journal lines gives the table the operations describe (PRD-031)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    hashes = st.sampled_from([c * 64 for c in "abcdef"])
    keys = st.sampled_from(["m.f", "m.f@2", "g.h"])
    ops = st.lists(st.tuples(keys, hashes, st.booleans(), st.sampled_from(["pickle", "json"])),
                   max_size=30)

    @settings(max_examples=200, deadline=None)
    @given(ops)
    def check(seq):
        model: dict[tuple[str, str], str] = {}
        text = ""
        for key, h, forget, fmt in seq:
            if forget:
                model.pop((key, h), None)
                text += spec.journal_line(key, h, None)
            else:
                model[(key, h)] = f"/c/{key}/{h}"
                text += spec.journal_line(key, h, f"/c/{key}/{h}", ref="m:f", fmt=fmt)
        table: dict = {}
        spec.apply_journal(table, text)
        got = {(k, h): p for k, rec in table.items() for h, p in rec["instances"].items()}
        assert got == model
        # replaying the whole journal over its own result gives the same instances (a crash
        # between folding and truncating the journal is harmless; `formats` is a union that
        # never decides a hit)
        again = json.loads(json.dumps(table))
        spec.apply_journal(again, text)
        assert {k: r["instances"] for k, r in again.items()} == \
            {k: r["instances"] for k, r in table.items()}

    check()
