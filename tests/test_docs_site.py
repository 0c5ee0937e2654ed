"""The documentation site as a reader meets it (issue 26): built once per test session with
``mkdocs build --strict`` (0 warnings), served on 127.0.0.1, and every page, image, asset
and internal ``#anchor`` requested. The reference covers every command of ``datamanifest
--help``, every name of ``datamanifest.__all__``, every DM code and every rule ID."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

from datamanifest.testing import free_port

from .conftest import ROOT, mermaid_node


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    """Build the site once for the whole run (pytest-xdist workers share it through a lock
    file in the run's common temporary folder). Returns the build's exit status and log."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    site, record = shared / "docs-site", shared / "docs-site.json"
    with open(shared / "docs-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
                       PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
            p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                                str(ROOT / "docs" / "mkdocs.yml"), "-d", str(site)],
                               capture_output=True, text=True, env=env, timeout=600)
            record.write_text(json.dumps({"status": p.returncode, "log": p.stdout + p.stderr}))
    result = json.loads(record.read_text())
    result["site"] = site
    return result


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script", "source"):
                self.links.append(a[key])


@pytest.fixture(scope="session")
def crawl(built) -> dict:
    """Serve the built site on 127.0.0.1 and request everything it links to, from the home
    page: url -> (status, content type, ids, links)."""
    assert built["status"] == 0, built["log"][-3000:]
    port = free_port()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(built["site"]))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}/"
    seen: dict[str, dict] = {}
    todo = [base, base + "search/search_index.json"]  # read by the page's script
    try:
        while todo:
            url = todo.pop()
            if url in seen:
                continue
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    body, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                seen[url] = {"status": e.code, "type": "", "ids": set(), "links": []}
                continue
            entry = {"status": status, "type": ctype, "ids": set(), "links": []}
            seen[url] = entry
            if "html" in ctype:
                p = _Page()
                p.feed(body.decode("utf-8"))
                entry["ids"] = p.ids
                for link in p.links:
                    full = urljoin(url, link)
                    if urlparse(full).netloc != urlparse(base).netloc:
                        continue  # external links are not followed
                    entry["links"].append(full)
                    page = urldefrag(full)[0]
                    if page not in seen:
                        todo.append(page)
    finally:
        server.shutdown()
    return {"base": base, "pages": seen}


def test_site_builds_strictly_without_warnings(built):
    assert built["status"] == 0, built["log"][-3000:]
    assert not re.search(r"^WARNING", built["log"], re.M), built["log"][-3000:]


def test_every_page_image_and_asset_answers_200(crawl):
    bad = {u: e["status"] for u, e in crawl["pages"].items() if e["status"] != 200}
    assert not bad, bad
    html_pages = [u for u, e in crawl["pages"].items() if "html" in e["type"]]
    assert len(html_pages) >= 40
    assert any(u.endswith(".svg") for u in crawl["pages"])  # the benchmark charts


def test_every_internal_anchor_exists(crawl):
    pages = crawl["pages"]
    broken = []
    for url, entry in pages.items():
        for link in entry["links"]:
            page, frag = urldefrag(link)
            if frag and "html" in pages.get(page, {}).get("type", ""):
                if frag not in pages[page]["ids"]:
                    broken.append(f"{url} -> {link}")
    assert not broken, broken[:20]


def test_search_index_is_served_and_lists_every_page(crawl, built):
    url = urljoin(crawl["base"], "search/search_index.json")
    assert crawl["pages"][url]["status"] == 200
    index = json.loads((built["site"] / "search" / "search_index.json").read_text())
    locations = {d["location"].split("#")[0] for d in index["docs"]}
    assert {"", "getting-started/", "reference/cli/", "spec/", "reference/codes/"} <= locations


def _ids(crawl, path: str) -> set[str]:
    return crawl["pages"][urljoin(crawl["base"], path)]["ids"]


def test_every_cli_command_has_a_reference_entry(crawl):
    import click

    from datamanifest.cli import main

    ids = _ids(crawl, "reference/cli/")
    missing = []
    seen: set[int] = set()

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is None or sub.hidden or id(sub) in seen:
                    continue  # an alias (ls = list) is documented under its command
                seen.add(id(sub))
                slug = "-".join(["datamanifest", *path, name])
                if slug not in ids:
                    missing.append(slug)
                walk(sub, [*path, name])

    walk(main, [])
    assert not missing, missing


def test_every_public_name_has_a_reference_entry(crawl):
    import datamanifest

    ids = _ids(crawl, "reference/python/")
    assert not [n for n in datamanifest.__all__ if f"datamanifest.{n}" not in ids]


def test_every_code_and_every_rule_has_an_anchor(crawl):
    from datamanifest.errors import CODES

    codes = _ids(crawl, "reference/codes/")
    assert not [c for c in CODES if c not in codes]
    spec, index = _ids(crawl, "spec/"), _ids(crawl, "spec/rules/")
    rules = re.findall(r"^\s*- \*\*([A-Z]+-\d+)\*\*", (ROOT / "SCHEMA.md").read_text(), re.M)
    assert len(rules) > 250
    assert not [r for r in rules if r not in spec or r not in index]


#: the build run with the given top-level modules absent, as if never installed
_BUILD_WITHOUT = """
import importlib.machinery, sys
def hidden(name):
    return any(name == m or name.startswith(m + ".") for m in HIDDEN)
class _Absent(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if hidden(name) else super().find_spec(name, path, target)
sys.meta_path[:] = [_Absent if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
from mkdocs.__main__ import cli
cli(["build", "--strict", "-f", CONFIG, "-d", SITE])
"""


def _docs_extra_modules() -> set[str]:
    """The top-level modules of the feature extras that the ``docs`` extra pulls in."""
    import tomllib

    from datamanifest.optional import EXTRAS

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["docs"]
    out: set[str] = set()
    for req in declared:
        m = re.match(r"datamanifest\[([^\]]+)\]", req)
        for extra in (m.group(1).split(",") if m else ()):
            out |= set(EXTRAS[extra.strip()])
    return out


def test_the_site_builds_with_the_docs_extra_alone(tmp_path):
    """``make docs`` installs the ``docs`` extra and nothing else, so the build must not
    import a module that only a feature extra installs (a fresh clone's ``make docs`` once
    stopped at DM170 for numpy: the Python API page imported ``datamanifest.virtualize``).
    PyYAML stays: MkDocs itself requires it."""
    from datamanifest.optional import EXTRAS

    hidden = sorted({m for mods in EXTRAS.values() for m in mods} - _docs_extra_modules()
                    - {"yaml"})
    assert "numpy" in hidden or "numpy" in _docs_extra_modules()
    code = (f"HIDDEN = {hidden!r}\nCONFIG = {str(ROOT / 'docs' / 'mkdocs.yml')!r}\n"
            f"SITE = {str(tmp_path / 'site')!r}\n" + _BUILD_WITHOUT)
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=600)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-3000:]
    assert not re.search(r"^WARNING", log, re.M), log[-3000:]
    assert (tmp_path / "site" / "reference" / "python" / "index.html").is_file()


def test_the_api_pages_table_of_lazy_names_is_where_they_are_defined():
    """docs/hooks.py names the extras-only names of ``__all__`` without importing them; here,
    with every extra installed, each is what importing it gives."""
    import importlib.util

    import datamanifest

    spec = importlib.util.spec_from_file_location("dm_docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    assert set(hooks.DEFINED_IN) <= set(datamanifest.__all__)
    for name, module in hooks.DEFINED_IN.items():
        obj = getattr(datamanifest, name)
        assert (obj.__module__, obj.__qualname__) == (module, name)


def test_every_benchmark_has_its_chart_on_the_performance_page(crawl):
    """One SVG chart per benchmark of bench/results.json, drawn by bench/charts.py at build
    time, linked from the Performance page and served."""
    names = json.loads((ROOT / "bench" / "results.json").read_text())["benchmarks"]
    page = urljoin(crawl["base"], "performance/")
    linked = {urlparse(u).path.rsplit("/", 1)[-1] for u in crawl["pages"][page]["links"]}
    for name in names:
        chart = urljoin(crawl["base"], f"assets/charts/{name}.svg")
        assert f"{name}.svg" in linked, name
        assert crawl["pages"][chart]["status"] == 200 and "svg" in crawl["pages"][chart]["type"]


#: Mermaid's own parser over every diagram of the site, one file each (jsdom gives it its
#: DOM); prints one line per file, its diagram type or ERROR and the message
_PARSE_ALL = """
import { JSDOM } from 'jsdom';
import { readFileSync } from 'fs';
const dom = new JSDOM('');
globalThis.window = dom.window; globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
for (const f of process.argv.slice(1)) {
  try {
    const d = await mermaid.mermaidAPI.getDiagramFromText(readFileSync(f, 'utf8'));
    console.log(JSON.stringify([f, d.type, ""]));
  } catch (e) {
    console.log(JSON.stringify([f, "ERROR", String(e.message || e).slice(0, 300)]));
  }
}
"""


def test_every_mermaid_diagram_of_the_site_is_read_by_mermaid(tmp_path: Path):
    """The concepts pages draw with Mermaid, which Material renders in the reader's browser:
    a diagram Mermaid cannot parse would show as an error box. Each is parsed by Mermaid
    itself (npm mermaid, installed by `make test-tools` for the graph tests too)."""
    node, where = mermaid_node()
    files = []
    for page in sorted((ROOT / "docs" / "pages").rglob("*.md")):
        blocks = re.findall(r"^```mermaid[^\n]*\n(.*?)^```", page.read_text(encoding="utf-8"),
                            re.M | re.S)
        for i, block in enumerate(blocks):
            f = tmp_path / f"{page.stem}-{i}.mmd"
            f.write_text(block, encoding="utf-8")
            files.append(f)
    assert len(files) >= 9  # every concepts page has one
    # a broken diagram is refused by the same parser: the check is not accepting anything
    broken = tmp_path / "broken.mmd"
    broken.write_text("sequenceDiagram\n    A->>: no target\n", encoding="utf-8")
    r = subprocess.run([node, "--input-type=module", "-e", _PARSE_ALL, *map(str, files),
                        str(broken)], cwd=where, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("[")]
    assert len(results) == len(files) + 1, r.stdout[-2000:]
    *pages, last = results
    assert last[1] == "ERROR"
    bad = [(Path(f).name, msg) for f, kind, msg in pages if kind == "ERROR"]
    assert not bad, bad
