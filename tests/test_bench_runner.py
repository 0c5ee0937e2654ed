"""`make bench`'s runner (bench/run.py) and the bench JSON contract (bench/contract.py),
issue 24: a quick run of the real scripts writes results.json and ONE Markdown table of every
figure; a failing or contract-breaking script is a row saying so and a non-zero exit, after
the files are written; the documentation's charts draw from what the runner writes."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import ROOT

BENCH = ROOT / "bench"


def _module(name: str):
    sys.path.insert(0, str(BENCH))  # the scripts import bench/contract.py as ``contract``
    try:
        spec = importlib.util.spec_from_file_location(f"dm_bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def run():
    return _module("run")


@pytest.fixture(scope="module")
def contract():
    return _module("contract")


def _table(md: str) -> list[list[str]]:
    """The rows of the one Markdown table in ``md`` (header first), cells stripped."""
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in rows if "---|" not in ln]


def test_quick_run_of_our_scripts_writes_the_json_and_one_table(tmp_path, run, contract):
    results, md = tmp_path / "results.json", tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--only",
         "check_scaling,list_scaling", "--only", "cache_hit", "--results", str(results),
         "--markdown", str(md)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(results.read_text())
    assert {"about", "machine", "benchmarks", "failed"} <= set(doc)
    assert {"cores", "ram_gib", "python", "date"} <= set(doc["machine"])
    assert doc["failed"] == {}
    # in the table's order, whatever the order of --only
    assert list(doc["benchmarks"]) == ["cache_hit", "list_scaling", "check_scaling"]
    for name, entry in doc["benchmarks"].items():
        assert contract.problems(entry) == [], name
        assert entry["measured"] == doc["machine"]["date"][:10]
        assert entry["figures"], name
        assert all(f"bench/{name}.py --quick" in f["command"] for f in entry["figures"])
    cases = [f["case"] for e in doc["benchmarks"].values() for f in e["figures"]]
    assert sum(c.startswith("peak RSS, list --json") for c in cases) == 3  # issue 24, point 6
    hit = doc["benchmarks"]["cache_hit"]["figures"][0]
    assert hit["peer"] == "joblib.Memory hit" and hit["peer_value"] > 0 and hit["floor_value"] > 0
    assert hit["holds"] in (True, False) and hit["target"] == "<= peer"

    rows = _table(md.read_text())
    assert rows[0] == list(_module("table").COLUMNS)
    assert len(rows) - 1 == len(cases)  # one row per figure, in one table
    assert md.read_text().count("| benchmark |") == 1
    by_case = {r[1]: r for r in rows[1:]}
    r = by_case[hit["case"]]
    assert r[0] == "cache_hit" and r[2].endswith(" ms") and "joblib.Memory hit: " in r[3]
    assert "x peer" in r[5] and "x floor" in r[5] and r[7] in ("yes", "**no**")
    assert r[8].startswith("`") and "bench/cache_hit.py --quick" in r[8]

    charts = _module("charts").render_all(doc)
    assert set(charts) == set(doc["benchmarks"])
    assert all(svg.startswith("<svg") for svg in charts.values())


GOOD = """
import json, sys
path = sys.argv[sys.argv.index("--json") + 1]
fig = {"case": "one case", "unit": "MB/s", "ours": 200.0, "peer": "curl", "peer_value": 100.0,
       "floor": "cat", "floor_value": 250.0, "target": ">= peer", "holds": True,
       "command": "python good.py"}
json.dump({"title": "Good", "command": "python good.py", "duration": "1 s", "what": "w",
           "columns": ["a"], "rows": [["1"]], "chart": None, "figures": [fig]}, open(path, "w"))
"""
BROKEN = """
import json, sys
path = sys.argv[sys.argv.index("--json") + 1]
json.dump({"title": "Broken", "rows": [], "figures": [{"case": "c", "unit": "furlongs"}]},
          open(path, "w"))
"""
CRASH = """
import sys
print("setting up")
print("Traceback: the server did not start", file=sys.stderr)
sys.exit(3)
"""


def test_failed_and_contract_breaking_scripts_are_rows_and_exit_non_zero(tmp_path, run):
    scripts = {}
    for name, body in (("good", GOOD), ("broken", BROKEN), ("crash", CRASH)):
        scripts[name] = tmp_path / f"{name}.py"
        scripts[name].write_text(textwrap.dedent(body))
    results, md = tmp_path / "results.json", tmp_path / "results.md"
    old = {"title": "Crash before", "command": "x", "duration": "d", "what": "w",
           "columns": ["c"], "rows": [["1"]], "measured": "2026-11-01", "source": "issue 1"}
    results.write_text(json.dumps({"benchmarks": {"crash": old, "kept": old},
                                   "reliability": {"chaos": {"rows": []}}}))
    lines: list[str] = []
    benches = [run.Benchmark(n, str(p), ("--flag",)) for n, p in scripts.items()]
    status = run.run(benches, results, md, timeout=60, command="test", log=lines.append)
    assert status == 1
    doc = json.loads(results.read_text())
    assert set(doc["failed"]) == {"broken", "crash"}
    assert doc["failed"]["crash"]["error"] == "exit status 3: Traceback: the server did not start"
    assert "'command' is missing" in doc["failed"]["broken"]["error"]
    assert "furlongs" in doc["failed"]["broken"]["error"]
    assert doc["benchmarks"]["good"]["figures"][0]["ours"] == 200.0
    assert doc["benchmarks"]["crash"]["stale"] is True  # the old figures stay, marked
    assert doc["benchmarks"]["kept"] == old  # not run: kept as it was
    assert doc["reliability"] == {"chaos": {"rows": []}}
    assert "broken" not in doc["benchmarks"]
    assert any("setting up" in ln for ln in lines)  # the script's output is shown
    rows = _table(md.read_text())
    failed = [r for r in rows if r[1].startswith("**FAILED**")]
    assert [r[0] for r in failed] == ["broken", "crash"]
    assert all(r[7] == "**no**" and "--flag" in r[8] for r in failed)
    good = next(r for r in rows if r[0] == "good")
    # a speed: ours / peer above the peer, floor / ours from the floor
    assert good[2] == "200 MB/s" and good[5] == "2.00x peer · 1.25x floor" and good[7] == "yes"
    assert ["crash (failed in this run; figures of 2026-11-01)",
            "(no figures: an entry from before the table)"] == next(
        r[:2] for r in rows if r[0].startswith("crash ("))
    assert any(r[0] == "kept (measured 2026-11-01)" for r in rows)


def test_a_script_past_its_timeout_is_stopped_and_reported(tmp_path, run):
    slow = tmp_path / "slow.py"
    slow.write_text("import time, subprocess, sys\n"
                    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                    "time.sleep(60)\n")
    r = run.run_one(run.Benchmark("slow", str(slow)), quick=False, timeout=2, log=lambda s: None)
    assert r["ok"] is False and r["error"] == "stopped after 2 s (--timeout)"
    assert r["seconds"] < 20


def test_contract_problems_and_figure(contract):
    assert contract.problems([]) == ["the entry is a list, not an object"]
    fig = contract.figure("c", "s", 1.0, command="cmd")
    assert set(fig) == set(contract.FIGURE_KEYS) and fig["holds"] is None
    with pytest.raises(ValueError, match="furlongs"):
        contract.figure("c", "furlongs", 1.0)
    entry = {k: "x" for k in contract.ENTRY_KEYS} | {"rows": [], "chart": None,
                                                     "figures": [fig | {"holds": "yes"}]}
    assert contract.problems(entry) == ["figure 0: 'holds' is not true, false or null"]


def test_ctrl_c_stops_the_script_and_its_children_and_writes_what_was_measured(tmp_path):
    good, slow = tmp_path / "good.py", tmp_path / "slow.py"
    good.write_text(textwrap.dedent(GOOD))
    pid_file = tmp_path / "grandchild.pid"
    slow.write_text("import subprocess, sys, time\n"
                    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                    f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
                    "print('started', flush=True)\n"
                    "time.sleep(60)\n")
    results = tmp_path / "results.json"
    driver = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(BENCH)!r})
        import run
        benches = [run.Benchmark("good", {str(good)!r}), run.Benchmark("slow", {str(slow)!r}),
                   run.Benchmark("never", {str(good)!r})]
        sys.exit(run.run(benches, run.Path({str(results)!r}), run.Path({str(results)!r} + ".md"),
                         command="test"))
        """)
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "started" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    grandchild = int(pid_file.read_text())
    for _ in range(100):  # killed with its process group (a zombie until reaped counts)
        try:
            state = Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the benchmark's child outlived Ctrl-C")
    doc = json.loads(results.read_text())
    assert list(doc["benchmarks"]) == ["good"]
    assert doc["failed"]["slow"]["error"].startswith("interrupted (Ctrl-C)")
    assert "never" not in doc["failed"]
