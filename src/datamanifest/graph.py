"""A picture of a manifest's dependencies: ``requires``, the sources of virtual datasets,
and the produced artifacts whose parameters name datasets (``datamanifest graph``).

:func:`build` reads a parsed manifest *as it is*, errors included: a ``requires`` entry
naming no dataset becomes an ``unknown`` node, and an edge that closes a cycle is marked
``cycle`` (MAN-031 and MAN-032 are ``check``'s to report; the picture shows them). Three
renderings: :func:`tree` (an indented tree for a terminal), :func:`mermaid` (a Mermaid
flowchart, drawn by GitHub and Material for MkDocs) and :func:`dot` (Graphviz).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: node kinds
DATASET, UNKNOWN, SOURCE, ARTIFACT = "dataset", "unknown", "source", "artifact"


@dataclass
class Node:
    """One node: ``id`` (unique in the graph), ``kind``, ``label`` (a dataset's name, a
    source's URL, an artifact's cache key) and ``detail`` (a short note, may be empty)."""

    id: str
    kind: str
    label: str
    detail: str = ""


@dataclass
class Edge:
    """``src`` depends on ``dst``: ``kind`` is ``requires``, ``source`` or ``parameter``
    (``label`` names the parameter); ``cycle`` marks the edge that closes a cycle."""

    src: str
    dst: str
    kind: str
    label: str = ""
    cycle: bool = False


@dataclass
class Graph:
    """Nodes in first-seen order, edges in document order, and the ``roots`` the
    renderings start from (what nothing else in the picture depends on, or the NAMES
    asked for)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        return self.nodes.setdefault(node.id, node)

    def children(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    @property
    def cycles(self) -> list[Edge]:
        return [e for e in self.edges if e.cycle]

    @property
    def unknown(self) -> list[str]:
        return [n.label for n in self.nodes.values() if n.kind == UNKNOWN]

    def as_json(self) -> dict[str, Any]:
        return {"nodes": [n.__dict__ for n in self.nodes.values()],
                "edges": [e.__dict__ for e in self.edges], "roots": list(self.roots)}


def _datasets(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in data.items() if not k.startswith("_") and isinstance(v, dict)}


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def identifiers(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each identifier (name, alias, doi; MAN-050) -> the dataset names it matches."""
    out: dict[str, list[str]] = {}
    datasets = _datasets(data)
    for name in datasets:
        out.setdefault(name, []).append(name)
    for name, ds in datasets.items():
        aliases = ds.get("aliases")
        others = [a for a in aliases if isinstance(a, str)] if isinstance(aliases, list) else []
        if isinstance(ds.get("doi"), str) and ds["doi"]:
            others.append(ds["doi"])
        for ident in others:
            if ident not in datasets and name not in out.setdefault(ident, []):
                out[ident].append(name)
    return out


def build(data: Mapping[str, Any], *, artifacts: Iterable[Mapping[str, Any]] = (),
          names: Iterable[str] | None = None) -> Graph:
    """The dependency graph of a parsed manifest.

    Parameters
    ----------
    data
        The manifest as parsed TOML (it need not pass ``check``).
    artifacts
        Produced artifacts, each ``{"id", "label", "parameters": {name: value}}``: an
        artifact depends on every dataset a string among its parameter values names (by
        name, alias or doi).
    names
        Draw only these datasets (identifiers), what they depend on, and the artifacts
        that depend on them; ``None``: everything. An identifier that matches no dataset
        is drawn as an ``unknown`` root.

    Returns
    -------
    Graph
    """
    datasets = _datasets(data)
    idents = identifiers(data)
    g = Graph()

    def dataset_node(name: str) -> str:
        if name in datasets:
            ds = datasets[name]
            notes = []
            if ds.get("virtual") is True:
                notes.append("virtual")
            if ds.get("description") and isinstance(ds["description"], str):
                notes.append(ds["description"].strip().splitlines()[0][:60])
            g.add(Node(name, DATASET, name, ", ".join(notes)))
            return name
        node_id = f"unknown:{name}"
        g.add(Node(node_id, UNKNOWN, name, "unknown dataset"))
        return node_id

    def sources(ds: Mapping[str, Any]) -> list[str]:
        if ds.get("virtual") is not True:
            return []
        uris = ds.get("uris")
        if isinstance(uris, list):
            return [u for u in uris if isinstance(u, str)]
        return [ds["uri"]] if isinstance(ds.get("uri"), str) and ds["uri"] else []

    def requires(ds: Mapping[str, Any]) -> list[str]:
        req = ds.get("requires")
        if isinstance(req, str):
            return [req]
        return [r for r in req if isinstance(r, str)] if isinstance(req, list) else []

    # which datasets: all, or the closure of NAMES over requires
    if names is None:
        selected = list(datasets)
        missing: list[str] = []
    else:
        selected, missing = [], []
        for ident in names:
            hits = idents.get(ident, [])
            if not hits:
                missing.append(ident)
            for h in hits:
                if h not in selected:
                    selected.append(h)
        stack = list(selected)
        while stack:
            for r in requires(datasets[stack.pop()]):
                if r in datasets and r not in selected:
                    selected.append(r)
                    stack.append(r)
        selected = [n for n in datasets if n in selected]  # document order

    for name in selected:
        dataset_node(name)
    for name in selected:
        ds = datasets[name]
        for r in requires(ds):
            g.edges.append(Edge(name, dataset_node(r), "requires"))
        for url in sources(ds):
            node_id = f"source:{url}"
            g.add(Node(node_id, SOURCE, url, "source"))
            g.edges.append(Edge(name, node_id, "source"))
    for ident in missing:
        g.roots.append(dataset_node(ident))

    wanted = set(selected)
    for art in artifacts:
        hits = []
        for key, value in (art.get("parameters") or {}).items():
            for s in _strings(value):
                for n in idents.get(s, []):
                    if (n, key) not in hits:
                        hits.append((n, key))
        if names is not None and not any(n in wanted for n, _ in hits):
            continue
        node_id = f"artifact:{art['id']}"
        g.add(Node(node_id, ARTIFACT, str(art.get("label") or art["id"]),
                   str(art.get("detail") or "")))
        for n, key in hits:
            if n in wanted:
                g.edges.append(Edge(node_id, n, "parameter", key))

    _mark_cycles(g)
    depended = {e.dst for e in g.edges}
    for node_id, node in g.nodes.items():
        if node.kind in (DATASET, ARTIFACT) and node_id not in depended \
                and node_id not in g.roots:
            g.roots.append(node_id)
    # a cycle nothing outside it reaches still has to be drawn: its first node is a root
    seen = _reachable(g, g.roots)
    for node_id, node in g.nodes.items():
        if node_id not in seen and node.kind in (DATASET, ARTIFACT):
            g.roots.append(node_id)
            seen |= _reachable(g, [node_id])
    return g


def _reachable(g: Graph, roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(e.dst for e in g.children(n))
    return seen


def _mark_cycles(g: Graph) -> None:
    """Mark the back edges of a depth-first walk in node order: each cycle gets one
    marked edge, the one that returns to a node on the current path."""
    state: dict[str, int] = {}  # 1 on the path, 2 done
    for start in g.nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(g.children(start)))]
        while stack:
            node, it = stack[-1]
            for e in it:
                s = state.get(e.dst)
                if s == 1:
                    e.cycle = True
                elif s is None:
                    state[e.dst] = 1
                    stack.append((e.dst, iter(g.children(e.dst))))
                    break
            else:
                state[node] = 2
                stack.pop()


# -- renderings ------------------------------------------------------------------------------------
def _describe(node: Node) -> str:
    if node.kind == SOURCE:
        return f"source {node.label}"
    if node.kind == UNKNOWN:
        return f"{node.label} (unknown dataset)"
    if node.kind == ARTIFACT:
        return f"{node.label} (artifact{': ' + node.detail if node.detail else ''})"
    return f"{node.label} ({node.detail})" if node.detail else node.label


def tree(g: Graph, *, ascii: bool = False) -> list[str]:
    """The graph as an indented tree, one line per node: each root, then what it depends
    on below it. A node drawn before is marked ``(*)`` and not expanded again; a node
    already on its own branch is marked ``(cycle)``; a parameter edge names the
    parameter."""
    tee, last, pipe, blank = ("|-- ", "`-- ", "|   ", "    ") if ascii else \
        ("├── ", "└── ", "│   ", "    ")
    lines: list[str] = []
    expanded: set[str] = set()

    def walk(node_id: str, prefix: str, path: set[str]) -> None:
        edges = g.children(node_id)
        for i, e in enumerate(edges):
            end = i == len(edges) - 1
            text = _describe(g.nodes[e.dst])
            if e.kind == "parameter":
                text = f"{e.label} = {text}"
            if e.dst in path:  # back on this branch: a requires cycle
                lines.append(f"{prefix}{last if end else tee}{text} (cycle)")
                continue
            if e.dst in expanded and g.children(e.dst):
                lines.append(f"{prefix}{last if end else tee}{text} (*)")
                continue
            lines.append(f"{prefix}{last if end else tee}{text}")
            expanded.add(e.dst)
            walk(e.dst, prefix + (blank if end else pipe), path | {e.dst})

    for root in g.roots:
        lines.append(_describe(g.nodes[root]))
        expanded.add(root)
        walk(root, "", {root})
    return lines


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for what would end or break it."""
    out = text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;") \
        .replace(">", "#gt;")
    return out.replace("\n", " ")


def mermaid(g: Graph) -> str:
    """A Mermaid flowchart (left to right): datasets as boxes, sources as parallelograms,
    artifacts as hexagons, unknown datasets dashed in red, cycle edges in red."""
    ids = {node_id: f"n{i}" for i, node_id in enumerate(g.nodes)}
    lines = ["flowchart LR"]
    for node_id, node in g.nodes.items():
        label = _mermaid_text(node.label)
        if node.detail and node.kind != SOURCE:
            label += "<br/>" + _mermaid_text(node.detail)
        shape = {SOURCE: '[/"{}"/]', ARTIFACT: '{{{{"{}"}}}}'}.get(node.kind, '["{}"]')
        cls = f":::{node.kind}" if node.kind != DATASET else ""
        lines.append(f"    {ids[node_id]}{shape.format(label)}{cls}")
    cycle_links = []
    for i, e in enumerate(g.edges):
        label = e.label or e.kind
        if e.cycle:
            label += " (cycle)"
            cycle_links.append(str(i))
        arrow = "-.->" if e.kind == "source" else "-->"
        lines.append(f'    {ids[e.src]} {arrow}|"{_mermaid_text(label)}"| {ids[e.dst]}')
    lines.append("    classDef unknown stroke:#c00,stroke-dasharray:5 5,color:#c00")
    lines.append("    classDef source fill:#f4f4f4")
    lines.append("    classDef artifact fill:#eef6ee")
    if cycle_links:
        lines.append(f"    linkStyle {','.join(cycle_links)} stroke:#c00,color:#c00")
    return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a DOT double-quoted string: \" and \\


def dot(g: Graph, name: str = "datamanifest") -> str:
    """A Graphviz digraph (left to right), node IDs being the graph's node ids: datasets
    as boxes, sources as notes, artifacts as hexagons, unknown datasets dashed in red,
    cycle edges in red."""
    lines = [f"digraph {_dot_id(name)} {{", "    rankdir=LR;",
             '    node [shape=box, fontname="Helvetica"];',
             '    edge [fontname="Helvetica", fontsize=10];']
    style = {DATASET: "", SOURCE: "shape=note, color=gray40",
             ARTIFACT: "shape=hexagon, style=filled, fillcolor=honeydew",
             UNKNOWN: "style=dashed, color=red3, fontcolor=red3"}
    for node_id, node in g.nodes.items():
        label = node.label if not node.detail or node.kind == SOURCE else \
            f"{node.label}\n{node.detail}"
        attrs = [f"label={_dot_id(label)}"] + ([style[node.kind]] if style[node.kind] else [])
        lines.append(f"    {_dot_id(node_id)} [{', '.join(attrs)}];")
    for e in g.edges:
        attrs = [f"label={_dot_id((e.label or e.kind) + (' (cycle)' if e.cycle else ''))}"]
        if e.kind == "source":
            attrs.append("style=dashed")
        if e.cycle:
            attrs.append("color=red3, fontcolor=red3")
        lines.append(f"    {_dot_id(e.src)} -> {_dot_id(e.dst)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
