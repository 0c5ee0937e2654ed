"""The public API's docstrings: everything in ``datamanifest.__all__`` and every public method
of the exported classes has a summary line, a numpydoc Parameters section when its signature
takes parameters, and documents only parameters its signature has (catches drift such as a
documented argument that was removed); each function and method also has a Returns section
when it returns something, and cites SCHEMA.md (a section or a rule ID). Parsed with griffe,
the parser the docs site uses.
"""

from __future__ import annotations

import inspect
import logging
import re

import pytest
from griffe import Docstring, DocstringSectionKind

import datamanifest


def _public_objects() -> list[tuple[str, object]]:
    out = []
    for name in datamanifest.__all__:
        if name == "__version__":
            continue
        obj = getattr(datamanifest, name)
        out.append((name, obj))
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            members: dict[str, object] = {}
            for base in reversed(obj.__mro__):  # our own bases too (Project's Operations)
                if base.__module__.startswith("datamanifest"):
                    members.update(vars(base))
            for attr, member in sorted(members.items()):
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    out.append((f"{name}.{attr}", member))
                elif inspect.isfunction(member):
                    out.append((f"{name}.{attr}", member))
    return out


OBJECTS = _public_objects()

#: Exported classes a user receives and never constructs: their constructor's parameters are
#: internal, so the class docstring needs no Parameters section.
BUILT_FOR_YOU = {
    "Project": "Project.open / datamanifest.open_manifest",
    "FetchReport": "Project.fetch",
    "CachedFunction": "the @cached decorator",
    "Artifact": "CachedFunction.artifact",
    "ChunkStore": "datamanifest.virtual.store.open_store, open_virtual",
}

#: Names whose docstrings are allowed to fail for a while (each with its reason); none today.
PENDING_ELSEWHERE: set[str] = set()


def _sections(doc: str):
    logging.getLogger("griffe").setLevel(logging.ERROR)
    return Docstring(inspect.cleandoc(doc)).parse("numpy")


def _parameters(obj) -> list[inspect.Parameter]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return []
    return [p for p in params if p.name not in ("self", "cls")]


def _documented(sections) -> list[str]:
    names = []
    for s in sections:
        if s.kind in (DocstringSectionKind.parameters, DocstringSectionKind.other_parameters):
            for p in s.value:
                names += [n.strip().lstrip("*") for n in p.name.split(",")]
    return names


#: how a docstring names the spec: "SCHEMA.md", a section "§21.3" or a rule ID "PRD-027"
RULE_CITED = re.compile(r"SCHEMA\.md|§\s?\d|\b[A-Z]{2,5}-\d{3}\b")


def problems(name: str, obj) -> list[str]:
    """What is wrong with the docstring of ``obj`` (exported as ``name``)."""
    doc = obj.__doc__ if not isinstance(obj, property) else obj.fget.__doc__
    if not (doc and doc.strip()):
        return [f"{name} has no docstring"]
    summary = inspect.cleandoc(doc).split("\n\n")[0]
    if len(summary.splitlines()) > 3:
        return [f"{name}: the docstring does not start with a summary line (at most 3 lines)"]
    if isinstance(obj, property) or (inspect.isclass(obj) and issubclass(obj, BaseException)):
        return []
    if inspect.isclass(obj) and name in BUILT_FOR_YOU:
        return []
    sections = _sections(doc)
    params = _parameters(obj)
    documented = _documented(sections)
    out = []
    if params and not documented:
        out.append(f"{name}{inspect.signature(obj)}: no Parameters section")
    have = {p.name for p in params}
    ghosts = [d for d in documented if d not in have and not any(
        p.kind is p.VAR_KEYWORD for p in params)]  # **options: its keys are documented
    if ghosts:
        out.append(f"{name} documents parameters its signature lacks: {ghosts}")
    other = any(s.kind is DocstringSectionKind.other_parameters for s in sections)
    missing = [p.name for p in params if p.name not in documented
               and not (p.kind is p.VAR_KEYWORD and other)]  # **options: Other Parameters
    if documented and missing:
        out.append(f"{name}: parameters not documented: {missing}")
    if inspect.isfunction(obj):
        kinds = {s.kind for s in sections}
        try:
            returns = inspect.signature(obj).return_annotation
        except (TypeError, ValueError):
            returns = inspect.Signature.empty
        gives = returns not in (None, "None", inspect.Signature.empty)
        if gives and not kinds & {DocstringSectionKind.returns, DocstringSectionKind.yields}:
            out.append(f"{name} returns {returns} but has no Returns section")
        if not RULE_CITED.search(doc):
            out.append(f"{name} cites no SCHEMA.md section or rule ID")
    return out


@pytest.mark.parametrize("name,obj", OBJECTS, ids=[n for n, _ in OBJECTS])
def test_public_docstring(name, obj):
    found = problems(name, obj)
    if name in PENDING_ELSEWHERE:
        assert found, f"{name} is documented now: remove it from PENDING_ELSEWHERE"
        pytest.xfail("; ".join(found))
    assert not found, "\n".join(found)


def test_the_walk_finds_the_api():
    names = {n for n, _ in OBJECTS}
    assert {"Project", "Project.fetch", "Project.load", "open_virtual", "append",
            "cached"} <= names


def test_drift_is_caught():
    def f(a: int) -> int:
        """Add one.

        Parameters
        ----------
        a : int
            A number.
        base : str
            Gone from the signature.
        """
        return a + 1

    assert any("base" in p for p in problems("f", f))
    f.__doc__ = "Add one.\n\nReturns\n-------\nint\n"
    assert any("no Parameters section" in p for p in problems("f", f))
    f.__doc__ = "Add one (PAR-001).\n\nParameters\n----------\na : int\n    A number.\n"
    assert any("no Returns section" in p for p in problems("f", f))
    f.__doc__ = "Add one.\n\nParameters\n----------\na : int\n    A number.\n\n" \
        "Returns\n-------\nint\n"
    assert problems("f", f) == ["f cites no SCHEMA.md section or rule ID"]
    f.__doc__ = f.__doc__.replace("Add one.", "Add one (SCHEMA.md §12).")
    assert problems("f", f) == []
