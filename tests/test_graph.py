"""`datamanifest graph`: the requires graph, virtual datasets' sources and produced artifacts
drawn as a tree, Mermaid and Graphviz DOT; the DOT output is read back by the real Graphviz
`dot` (Debian package graphviz, which `make system-deps` installs), the Mermaid output by
Mermaid's own parser (npm mermaid, which `make test-tools` installs)."""

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

from .conftest import mermaid_node, run_cli, write_manifest

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


#: Mermaid's parser as a page runs it (jsdom gives it its DOM): each file's diagram type,
#: nodes (id, label, shape, classes) and edges, as JSON; run with the working directory in
#: .cache/mermaid so that the bare imports resolve there (make test-tools installs them)
_MERMAID_PARSE = """
import { JSDOM } from 'jsdom';
import { readFileSync } from 'fs';
const dom = new JSDOM('');
globalThis.window = dom.window; globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
const text = readFileSync(process.argv[1], 'utf8');
const d = await mermaid.mermaidAPI.getDiagramFromText(text);
const nodes = [...d.db.getVertices().values()].map(
  n => ({ id: n.id, text: n.text, type: n.type, classes: n.classes }));
const edges = d.db.getEdges().map(e => ({ start: e.start, end: e.end, text: e.text,
                                          stroke: e.stroke, style: e.style || [] }));
console.log(JSON.stringify({ type: d.type, nodes, edges }));
"""


def _mermaid(path: Path) -> subprocess.CompletedProcess:
    node, where = mermaid_node()
    return subprocess.run([node, "--input-type=module", "-e", _MERMAID_PARSE, str(path)],
                          cwd=where, capture_output=True, text=True, timeout=120)


def test_mermaid_flowchart_is_read_by_mermaid(project: Path, tmp_path: Path):
    _manifest(project, BODY + '\n[q]\nuri = "https://h.example.org/q.csv"\n'
                   'description = "a <b> & #1; \\"quoted\\" [x] {y} (z) | pipe --> arrow"\n')
    _produce(project)
    r = run_cli("graph", "--mermaid", cwd=project)
    assert r.returncode == 0, r.stderr
    (tmp_path / "graph.mmd").write_text(r.stdout)
    parsed = _mermaid(tmp_path / "graph.mmd")
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    g = json.loads(parsed.stdout)
    assert g["type"] == "flowchart-v2"
    nodes = {n["id"]: n for n in g["nodes"]}
    first = {n["text"].split("<br>")[0]: n for n in g["nodes"]}
    assert {"era5", "grid", "tas", "alone", "q", "zz", "https://h.example.org/tas-1.nc",
            "https://h.example.org/tas-2.nc"} <= set(first)
    assert first["zz"]["classes"] == ["unknown"]
    assert first["https://h.example.org/tas-1.nc"]["classes"] == ["source"]
    artifacts = [n for n in g["nodes"] if n["classes"] == ["artifact"]]
    assert len(artifacts) == 2 and all(n["type"] == "hexagon" for n in artifacts)
    assert "| pipe --" in first["q"]["text"]  # the description is one label, not syntax
    edges = {(nodes[e["start"]]["text"].split("<br>")[0],
              nodes[e["end"]]["text"].split("<br>")[0], e["text"]) for e in g["edges"]}
    assert ("grid", "era5", "requires (cycle)") in edges
    assert ("era5", "zz", "requires") in edges
    assert ("tas", "https://h.example.org/tas-1.nc", "source") in edges
    assert sum(1 for a, b, t in edges if b == "era5" and t == "dataset") == 1
    cycle = next(e for e in g["edges"] if e["text"] == "requires (cycle)")
    assert "stroke:#c00" in cycle["style"]  # the linkStyle reached the closing edge
    # a broken chart is refused by the same parser: it is not accepting anything
    (tmp_path / "broken.mmd").write_text('flowchart LR\n    n0["a" --> \n')
    assert _mermaid(tmp_path / "broken.mmd").returncode != 0


def test_graph_of_a_manifest_that_is_not_toml_is_an_error(project: Path):
    (project / "datamanifest.toml").write_text("[a\n")
    r = run_cli("graph", cwd=project)
    assert r.returncode == 1 and "DM001" in r.stderr and "Traceback" not in r.stderr
