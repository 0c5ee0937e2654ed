"""`datamanifest graph`: the requires graph, virtual datasets' sources and produced artifacts
drawn as a tree, Mermaid and Graphviz DOT; the DOT output is read back by the real Graphviz
`dot` (Debian package graphviz, which `make system-deps` installs)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import run_cli, write_manifest

BODY = """
[era5]
uri = "https://h.example.org/era5.nc"
aliases = ["reanalysis"]
description = "ERA5 \\"monthly\\" means"
requires = ["grid", "zz"]

[grid]
uri = "https://h.example.org/grid.nc"
requires = ["era5"]

[tas]
virtual = true
concat_dim = "time"
uris = ["https://h.example.org/tas-1.nc", "https://h.example.org/tas-2.nc"]
requires = ["grid"]

[alone]
uri = "https://h.example.org/alone.csv"
"""


def _dot_exe() -> str:
    exe = shutil.which("dot")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz dot is missing (make test installs graphviz as root)")
        pytest.skip("Graphviz dot is missing (make system-deps installs it as root)")
    return exe


def _manifest(project: Path, body: str = BODY) -> None:
    write_manifest(project, 'datacache_dir = "cache"\n' + body)  # in [_STORAGE]


def _produce(project: Path) -> None:
    """A real produced artifact whose parameter names the dataset `era5` by its alias."""
    (project / "produce.py").write_text(textwrap.dedent("""
        import datamanifest

        @datamanifest.cached(cachetype="means", format="json")
        def means(dataset: str, year: int):
            return {"dataset": dataset, "year": year}

        means("reanalysis", 2020)
        means("other", 2021)
    """))
    r = subprocess.run([sys.executable, "produce.py"], cwd=project, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_tree_shows_requires_sources_cycles_unknown_names_and_artifacts(project: Path):
    _manifest(project)
    _produce(project)
    r = run_cli("graph", cwd=project)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:6] == [
        "tas (virtual)",
        "├── grid",
        "│   └── era5 (ERA5 \"monthly\" means)",
        "│       ├── grid (cycle)",
        "│       └── zz (unknown dataset)",
        "├── source https://h.example.org/tas-1.nc",
    ]
    assert "alone" in lines
    art = [i for i, line in enumerate(lines) if line.startswith("means/")]
    assert len(art) == 2  # both artifacts; only one names a dataset
    named = next(i for i in art if "reanalysis" in lines[i])
    assert lines[named + 1] == "└── dataset = era5 (ERA5 \"monthly\" means) (*)"
    assert "requires cycle" in r.stderr and "DM041" in r.stderr
    assert "'zz' is required but is no dataset" in r.stderr
    ascii_ = run_cli("graph", "--ascii", "--no-artifacts", cwd=project).stdout
    assert "`-- zz (unknown dataset)" in ascii_ and "means/" not in ascii_


def test_names_select_a_closure_and_an_unknown_name_is_drawn(project: Path):
    _manifest(project)
    r = run_cli("graph", "reanalysis", "nope", "--json", cwd=project)
    assert r.returncode == 1
    assert "DM076 no dataset named 'nope'" in r.stderr
    g = json.loads(r.stdout)
    labels = {n["label"]: n["kind"] for n in g["nodes"]}
    assert labels == {"era5": "dataset", "grid": "dataset", "zz": "unknown",
                      "nope": "unknown"}
    assert {(e["src"], e["dst"]) for e in g["edges"]} == {
        ("era5", "grid"), ("era5", "unknown:zz"), ("grid", "era5")}
    assert [e for e in g["edges"] if e["cycle"]] == [
        {"src": "grid", "dst": "era5", "kind": "requires", "label": "", "cycle": True}]


def test_dot_output_is_read_by_graphviz(project: Path):
    dot = _dot_exe()
    _manifest(project)
    _produce(project)
    r = run_cli("graph", "--dot", cwd=project)
    assert r.returncode == 0, r.stderr
    # Graphviz parses it and gives back its nodes and edges (-Tjson: the parsed graph)
    parsed = subprocess.run([dot, "-Tjson"], input=r.stdout, capture_output=True, text=True,
                            timeout=30)
    assert parsed.returncode == 0 and not parsed.stderr, parsed.stderr
    g = json.loads(parsed.stdout)
    names = {o["name"]: o for o in g["objects"]}
    assert {"era5", "grid", "tas", "alone", "unknown:zz", "source:https://h.example.org/tas-1.nc",
            "source:https://h.example.org/tas-2.nc"} <= set(names)
    assert names["era5"]["label"] == 'era5\\nERA5 "monthly" means'
    assert names["unknown:zz"]["style"] == "dashed"
    artifacts = [n for n in names if n.startswith("artifact:means/")]
    assert len(artifacts) == 2
    edges = {(g["objects"][e["tail"]]["name"], g["objects"][e["head"]]["name"], e["label"])
             for e in g["edges"]}
    assert ("tas", "grid", "requires") in edges
    assert ("grid", "era5", "requires (cycle)") in edges
    assert ("era5", "unknown:zz", "requires") in edges
    assert ("tas", "source:https://h.example.org/tas-1.nc", "source") in edges
    assert sum(1 for a, b, lab in edges if a.startswith("artifact:") and b == "era5"
               and lab == "dataset") == 1
    svg = subprocess.run([dot, "-Tsvg"], input=r.stdout, capture_output=True, text=True,
                         timeout=30)
    assert svg.returncode == 0 and "<svg" in svg.stdout


#: Mermaid flowchart statements as the grammar writes them
_NODE = re.compile(r'^    (n\d+)(\["[^"]*"\]|\[/"[^"]*"/\]|\{\{"[^"]*"\}\})(:::\w+)?$')
_EDGE = re.compile(r'^    (n\d+) (-->|-\.->)\|"([^"]*)"\| (n\d+)$')


def test_mermaid_flowchart_is_well_formed(project: Path):
    _manifest(project, BODY + '\n[q]\nuri = "https://h.example.org/q.csv"\n'
                   'description = "a <b> & #1; \\"quoted\\""\n')
    r = run_cli("graph", "--mermaid", cwd=project)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    nodes, edges = {}, []
    for line in lines[1:]:
        if m := _NODE.match(line):
            nodes[m[1]] = (m[2], m[3])
        elif m := _EDGE.match(line):
            edges.append((m[1], m[2], m[3], m[4]))
        else:
            assert re.match(r"^    (classDef|linkStyle) ", line), line
    assert len(nodes) == 8 and len(edges) == 6
    assert all(a in nodes and b in nodes for a, _, _, b in edges)  # no dangling edge
    q = next(shape for shape, _ in nodes.values() if shape.startswith('["q'))
    assert q == '["q<br/>a #lt;b#gt; & #35;1; #quot;quoted#quot;"]'  # quotes cannot end it
    assert sum(1 for _, cls in nodes.values() if cls == ":::unknown") == 1
    assert sum(1 for _, cls in nodes.values() if cls == ":::source") == 2
    cycle = [i for i, e in enumerate(edges) if e[2] == "requires (cycle)"]
    assert len(cycle) == 1 and f"    linkStyle {cycle[0]} stroke:#c00,color:#c00" in lines


def test_graph_of_a_manifest_that_is_not_toml_is_an_error(project: Path):
    (project / "datamanifest.toml").write_text("[a\n")
    r = run_cli("graph", cwd=project)
    assert r.returncode == 1 and "DM001" in r.stderr and "Traceback" not in r.stderr
