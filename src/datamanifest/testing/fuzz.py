"""Fuzzing every document type (issue 13; ``design/2026-12-02-reliability.md``).

Seeds are the conformance suite's own valid documents (``fixtures/``): manifests,
configuration files, state files, both sidecars, append configurations, chunk manifests
and tree manifests. A Hypothesis strategy mutates a seed at the byte level (replace,
insert, delete, duplicate or truncate a span; syntax characters, control characters,
non-ASCII) or at the structure level (parse it, then drop a key, change a value's type,
add an unknown key, nest deeply, rename a dataset, and write it back). :func:`examine`
is the oracle; it returns the problems found (empty: the input was handled as promised):

- ``check`` (in-process, as the CLI calls it, and its JSON rendering) never raises; every
  diagnostic has a known code, a message, and a line:column inside the text;
- a document that checks clean is formatted (``datamanifest format``) and the output
  re-parses, checks clean and validates to the same model; ``migrate`` of a manifest
  never raises anything but a coded error and its output still parses;
- the Python loaders (:class:`~datamanifest.project.Project`, ``read_state``, the chunk
  manifest parser, the tree checksum of a tree manifest) raise nothing but coded
  :class:`~datamanifest.errors.DataManifestError`.
"""

from __future__ import annotations

import json
import tempfile
import tomllib
import traceback
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

TOML_TYPES = ("manifest", "config", "state", "config-sidecar", "metadata-sidecar",
              "append-config")
TYPES = TOML_TYPES + ("chunk-manifest", "tree-manifest")
#: file names a document is checked under (detection by name, DOC rules)
FILE_NAMES = {"manifest": "datamanifest.toml", "config": "config.toml", "state": "state.toml",
              "config-sidecar": "config.toml", "metadata-sidecar": "metadata.toml",
              "append-config": "append.toml", "chunk-manifest": "x.chunks.json",
              "tree-manifest": "tree.json"}
SYNTAX = b'"[]{}=,.#\n\'\\x0_5-@:$~*\t '
ODD = ["", "..", "../../etc", "\u0000", "\u202e", "é" * 40, "x" * 5000, "$", "${", "$$",
       "sha256:", "C:/x", "/abs", "~", "#", "\\", "nan", "1e400"]


def _fixtures() -> Path:
    from ..conformance import default_fixtures_dir

    root = default_fixtures_dir()
    if root is None:
        raise RuntimeError("the fuzzer's seeds are the fixtures/ folder of a checkout")
    return root


@lru_cache(maxsize=1)
def seeds() -> dict[str, list[str]]:
    """Seed texts per document type, from the conformance suite."""
    root = _fixtures()
    out: dict[str, list[str]] = {t: [] for t in TYPES}
    for t in TOML_TYPES:
        for p in sorted((root / t / "valid").glob("*.toml")):
            out[t].append(p.read_text(encoding="utf-8"))
    for p in sorted((root / "chunks").glob("*.json")):
        text = json.loads(p.read_text(encoding="utf-8"))["input"].get("text")
        if isinstance(text, str):
            out["chunk-manifest"].append(text)
    for p in sorted((root / "tree").glob("*.json")):
        doc = json.loads(p.read_text(encoding="utf-8"))["input"].get("manifest")
        if isinstance(doc, dict):
            out["tree-manifest"].append(json.dumps(doc, indent=1))
    return {t: v for t, v in out.items() if v}


# --------------------------------------------------------------------------- mutations


def _byte_mutation(data, raw: bytearray) -> bytearray:
    from hypothesis import strategies as st

    for _ in range(data.draw(st.integers(1, 4), label="byte edits")):
        n = len(raw)
        op = data.draw(st.sampled_from(["replace", "insert", "delete", "duplicate",
                                        "truncate", "control", "utf8"]))
        pos = data.draw(st.integers(0, max(n - 1, 0)))
        if op == "replace" and n:
            raw[pos] = data.draw(st.sampled_from(SYNTAX))
        elif op == "insert":
            raw[pos:pos] = data.draw(st.sampled_from([b'"', b"[", b"]]", b"=", b"\n[x]\n",
                                                      b'\n"a" = 1\n', b"{", b"}", b",", b"\\"]))
        elif op == "delete" and n:
            raw[pos:pos + data.draw(st.integers(1, 16))] = b""
        elif op == "duplicate" and n:
            span = raw[pos:pos + data.draw(st.integers(1, 64))]
            raw[pos:pos] = span
        elif op == "truncate":
            del raw[pos:]
        elif op == "control":
            raw.insert(pos, data.draw(st.integers(0, 31)))
        elif op == "utf8":
            raw[pos:pos] = data.draw(st.sampled_from(["é", "\u2028", "\ufeff", "💥"])).encode()
    return raw


def _odd_value(data) -> Any:
    from hypothesis import strategies as st

    return data.draw(st.one_of(
        st.sampled_from(ODD), st.integers(-2**63, 2**63 - 1), st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.sampled_from(ODD), max_size=3),
        st.dictionaries(st.sampled_from(["uri", "key", "checksum", "_META", "x", "schema"]),
                        st.sampled_from(ODD), max_size=3)), label="value")


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _structure_mutation(data, doc: Any) -> Any:
    from hypothesis import strategies as st

    for _ in range(data.draw(st.integers(1, 3), label="structure edits")):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        op = data.draw(st.sampled_from(["drop", "retype", "unknown", "nest", "rename"]))
        if not path:
            if isinstance(doc, dict):
                doc[data.draw(st.sampled_from(["_META", "zz", "_STORAGE", "datasets"]))] = \
                    _odd_value(data)
            continue
        last = path[-1]
        if op == "drop":
            del parent[last]
        elif op == "retype":
            parent[last] = _odd_value(data)
        elif op == "unknown" and isinstance(parent[last], dict):
            parent[last][data.draw(st.sampled_from(ODD[:8] + ["zz", "_x"]))] = _odd_value(data)
        elif op == "nest":
            value = parent[last]
            for _ in range(data.draw(st.integers(1, 40))):
                value = {"n": value}
            parent[last] = value
        elif op == "rename" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(ODD[:8] + ["a.b", "A B"]))] = parent.pop(last)
    return doc


def mutate(data, doc_type: str, text: str) -> str:
    """One mutated document of ``doc_type`` from the seed ``text`` (Hypothesis ``data``)."""
    from hypothesis import strategies as st

    if data.draw(st.booleans(), label="structural"):
        try:
            doc = tomllib.loads(text) if doc_type in TOML_TYPES else json.loads(text)
        except ValueError:
            doc = None
        if doc is not None:
            doc = _structure_mutation(data, doc)
            if doc_type in TOML_TYPES:
                import tomli_w

                try:
                    return tomli_w.dumps(doc if isinstance(doc, dict) else {"x": doc})
                except (TypeError, ValueError):
                    return text
            return json.dumps(doc)
    raw = _byte_mutation(data, bytearray(text.encode("utf-8")))
    return raw.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- the oracle


def _located(d, text: str) -> str:
    from ..errors import CODES

    if d.code not in CODES:
        return f"unknown code {d.code}"
    if not d.message:
        return f"{d.code} without a message"
    lines = text.split("\n")
    if d.line is None or d.column is None:
        return f"{d.code} without a line:column: {d.message}"
    if not 1 <= d.line <= len(lines) + 1:
        return f"{d.code} at line {d.line} of {len(lines)}"
    if not 1 <= d.column <= len(lines[d.line - 1] if d.line <= len(lines) else "") + 2:
        return f"{d.code} at column {d.column} of line {d.line}"
    return ""


def _coded(fn: Callable[[], Any], what: str, problems: list[str]) -> Any:
    from ..errors import DataManifestError

    try:
        return fn()
    except DataManifestError as e:
        if not getattr(e, "code", None):
            problems.append(f"{what}: an error without a code: {e}")
    except RecursionError:
        problems.append(f"{what}: RecursionError")
    except Exception as e:  # noqa: BLE001 - the finding
        problems.append(f"{what}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=-4)}")
    return None


def examine(doc_type: str, text: str) -> list[str]:
    """The problems found handling ``text`` as a ``doc_type`` (see the module docstring)."""
    from ..check import check_text

    problems: list[str] = []
    name = FILE_NAMES[doc_type]
    if doc_type == "tree-manifest":
        _tree(text, problems)
        return problems
    result = _coded(lambda: check_text(text, name, doc_type), "check", problems)
    if result is None:
        return problems or ["check returned nothing"]
    for d in result.diagnostics:
        why = _located(d, text)
        if why:
            problems.append(f"check: {why}")
    _coded(lambda: json.dumps([d.as_json() if hasattr(d, "as_json") else d.render()
                               for d in result.diagnostics]), "check --json", problems)
    if result.ok and doc_type in TOML_TYPES:
        _format(doc_type, result, name, problems)
        _format_comments(doc_type, text, result, problems)
    if doc_type == "manifest":
        _manifest(text, result, problems)
    elif doc_type == "state":
        _state(text, problems)
    elif doc_type == "chunk-manifest" and result.ok:
        from ..spec import virtual

        _coded(lambda: virtual.parse(json.loads(text)), "chunk manifest parse", problems)
    return problems


def _format(doc_type: str, result, name: str, problems: list[str]) -> None:
    from ..check import check_text
    from ..spec.canonical import dumps
    from ..spec.documents import MODELS

    out = _coded(lambda: dumps(result.data, doc_type), "format", problems)
    if out is None:
        return
    again = check_text(out, name, doc_type)
    if not again.ok:
        problems.append(f"format: the output does not check clean: "
                        f"{[d.render() for d in again.errors][:2]}")
        return
    model = MODELS.get(doc_type)
    if model is not None:
        try:
            before = model.model_validate(result.data)
        except ValueError:
            return  # a legacy form check accepts with a warning (state schemas 1-4, DM093)
        try:
            same = before == model.model_validate(tomllib.loads(out))
        except Exception as e:  # noqa: BLE001
            problems.append(f"format: the output does not validate: {e}")
            return
        if not same:
            problems.append("format: the output parses to another model")
    elif result.manifest is not None and again.manifest is not None and \
            again.manifest.model_dump() != result.manifest.model_dump():
        problems.append("format: the output parses to another manifest")


def _format_comments(doc_type: str, text: str, result, problems: list[str]) -> None:
    """``format`` keeping comments (FMT-005): the same document, each comment kept, and a
    second pass changes nothing; a comment that belongs to nothing is OrphanComments."""
    from ..spec.comments import OrphanComments, dumps_with_comments
    from ..spec._locate import count_comments

    try:
        out = dumps_with_comments(text, result.data, doc_type)
    except OrphanComments:
        return
    except Exception as e:  # noqa: BLE001 - the finding
        problems.append(f"format (comments): {type(e).__name__}: {e}\n"
                        f"{traceback.format_exc(limit=-4)}")
        return
    try:
        parsed = tomllib.loads(out)
    except tomllib.TOMLDecodeError as e:
        problems.append(f"format (comments): the output is not TOML: {e}")
        return
    if parsed != result.data:
        problems.append("format (comments): the output parses to another document")
    elif count_comments(out) != count_comments(text.replace("\r\n", "\n")):
        problems.append("format (comments): comments were lost or added")
    else:
        again = _coded(lambda: dumps_with_comments(out, parsed, doc_type), "format (comments)",
                       problems)
        if again is not None and again != out:
            problems.append("format (comments): formatting the output again changes it")


def _manifest(text: str, result, problems: list[str]) -> None:
    from ..migrate import migrate_text
    from ..project import Project

    migrated = _coded(lambda: migrate_text(text), "migrate", problems)
    if migrated is not None and result.data is not None:
        try:
            tomllib.loads(migrated[0])
        except tomllib.TOMLDecodeError as e:
            problems.append(f"migrate: the output does not parse: {e}")
    with tempfile.TemporaryDirectory(prefix="dm-fuzz-") as tmp:
        project = _coded(lambda: Project.from_text(Path(tmp) / "datamanifest.toml", text),
                         "Project.from_text", problems)
        if project is None:
            return
        # MAN-012: every dataset is refused or usable; a dry run plans them all (no network)
        from .. import fetch as fetching

        for name in project.dataset_names():
            if project.refusal(name) is None:
                _coded(lambda: project.target(name), "Project.target", problems)
        _coded(lambda: fetching.plan(project, probe=False), "fetch --dry-run", problems)


def _state(text: str, problems: list[str]) -> None:
    import warnings

    from ..store.state import read_state

    with tempfile.TemporaryDirectory(prefix="dm-fuzz-") as tmp:
        p = Path(tmp) / "state.toml"
        p.write_text(text, encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _coded(lambda: read_state(p, legacy=False), "read_state", problems)


def _tree(text: str, problems: list[str]) -> None:
    from .. import schemas
    from ..tree import checksum_from_manifest

    try:
        doc = json.loads(text)
    except ValueError:
        return  # not JSON: the loaders report DM-coded errors for that (verify, diff)
    if not isinstance(doc, dict) or any(True for _ in schemas.validator(
            "tree-manifest").iter_errors(doc)):
        return
    _coded(lambda: checksum_from_manifest(doc), "tree checksum", problems)


__all__ = ["TYPES", "seeds", "mutate", "examine"]
