"""The answers of this implementation to the conformance protocol, one function per kind
(fixtures/README.md): :data:`ANSWERS` maps each kind to its answer, and the list of kinds
(:data:`KINDS`) is derived from it. Each answer imports what it needs when asked, so that
the table is cheap to import (the command line lists the kinds in its ``--help``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from typing import Any

from ..optional import need


def _answer_document(request: dict[str, Any]) -> dict[str, Any]:
    """parse, reject: a document checked, its errors and warnings at their positions, and
    its normalized form (MAN-*, DIAG-001)."""
    from ..check import check_text
    from ..spec.documents import NORMALIZERS
    from ..spec.manifest import normalize

    doc_type = request.get("type", "manifest")
    result = check_text(request["document"], "document.toml", doc_type)
    pos = lambda ds: [{"code": d.code, "line": d.line, "column": d.column} for d in ds]  # noqa: E731
    if doc_type == "manifest":
        normalized = normalize(result.manifest) if result.manifest else None
    else:
        normalized = NORMALIZERS[doc_type](result.data) if result.ok and result.data is not \
            None and not result.warnings else None
    return {"errors": pos(result.errors), "warnings": pos(result.warnings),
            "normalized": normalized}


def _answer_key(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec import keys

    try:
        if request.get("key"):
            keys.check_key(request["key"])
            return {"key": request["key"]}
        return {"key": keys.derive_key(request.get("uri", ""), request.get("uris", []),
                                       request.get("version", ""))}
    except keys.UnsafeKey:
        return {"error": "DM030" if request.get("key") else "DM031"}


def _answer_hash(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec import paramhash

    try:
        table = tomllib.loads(request["document"])
        return {"canonical_json": paramhash.canonical_json(paramhash.key_table(table)),
                "hash": paramhash.parameter_hash(table),
                "cache_key": paramhash.cache_key(request["cachetype"], table,
                                                 request.get("version", ""))}
    except paramhash.ParameterError:
        return {"error": "DM100"}


def _answer_shell(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec import shell

    try:
        return {"argv": shell.to_argv(request["template"], request["variables"])}
    except shell.TemplateError as e:
        return {"error": e.code}


def _answer_roundtrip(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec.canonical import dumps
    from ..spec.comments import OrphanComments, dumps_with_comments

    data = tomllib.loads(request["document"])
    doc_type = request.get("type", "manifest")
    if not request.get("comments"):
        return {"document": dumps(data, doc_type)}
    try:  # FMT-003, FMT-005: comments kept where they belong
        return {"document": dumps_with_comments(request["document"], data, doc_type)}
    except OrphanComments as e:  # FMT-006
        line, column = e.positions[0]
        return {"error": "DM094", "line": line, "column": column}


def _answer_discover(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec.discovery import discover

    files = set(request["files"])
    found = discover(request["cwd"], files.__contains__, request.get("env", {}))
    return {"manifest": found} if found else {"error": "DM003"}


def _answer_archive(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec.archive import Member, UnsafeMember, check_members

    try:
        check_members([Member(m["name"], m.get("type", "file"), m.get("linkname", ""))
                       for m in request["members"]])
    except UnsafeMember as e:
        return {"error": "DM073", "member": e.member}
    return {"ok": True}


def _answer_layout(request: dict[str, Any]) -> dict[str, Any]:
    from pathlib import PurePosixPath

    from ..io.places import accepted, scheme_of
    from ..spec import resolution as res
    from ..spec.checksum import DEFAULT_ALGORITHM, parse
    from ..spec.keys import is_git_uri
    from ..spec.manifest import Manifest
    from ..store.layout import MARKER, is_current, status_of

    manifest = Manifest.from_dict(tomllib.loads(request["manifest"]))
    ds = manifest.datasets[request["dataset"]]
    platform = res.Platform(root=request["root"], hostname="", home="/nonexistent",
                            user_data_dir="/nonexistent", user_cache_dir="/nonexistent",
                            env={"DATAMANIFEST_DATASETS_DIR": request["datasets_dir"],
                                 "DATAMANIFEST_DATASETS_POOLS": ":".join(request.get("pools", []))},
                            pathsep=":")
    resolved = res.resolve_storage(manifest, {}, {}, platform)
    path, managed = res.storage_path(request["dataset"], ds, resolved, platform)
    is_dir = ds.is_folder
    target = PurePosixPath(path)
    marker = target / MARKER if is_dir else target.with_name(target.name + MARKER)
    staging = target.with_name(target.name + ".tmp")
    files: dict[str, Any] = request.get("files", {})
    status = status_of(str(target) in files, str(marker) in files, str(staging) in files)
    try:
        marker_record = json.loads(files.get(str(marker)) or "{}")
    except ValueError:
        marker_record = {}
    declared = ds.effective_checksum
    parsed = parse(declared) if declared else None
    if ds.skip_download or ds.lazy_access:
        source: Any = "none"
    elif ds.uri or ds.uris:
        scheme = scheme_of(ds.uri or ds.uris[0])
        source = scheme if scheme in accepted("fetch") or is_git_uri(ds.uri or ds.uris[0]) \
            else {"error": "DM072"}
    else:
        source = {"error": "DM079"}
    current = is_current(status, declared, marker_record)
    candidates = res.pool_candidates(ds, resolved, platform)
    hit = None
    for cand in ([] if current else candidates):  # POOL-003 on the described files
        cmarker = f"{cand}/{MARKER}" if is_dir else f"{cand}{MARKER}"
        if cand not in files:
            continue
        if cmarker in files:
            try:
                ok = json.loads(files[cmarker] or "{}").get("checksum") == declared
            except ValueError:
                ok = False
        elif not is_dir and isinstance(files[cand], str) and parsed is not None:
            from ..spec.checksum import hasher

            h = hasher(parsed.algorithm)
            h.update(files[cand].encode("utf-8"))
            ok = h.hexdigest() == parsed.hexdigest
        else:
            ok = False
        if ok:
            hit = cand
            break
    return {"target": str(target), "managed": managed, "is_dir": is_dir, "staging": str(staging),
            "lock": str(target.with_name(target.name + ".lock")), "marker": str(marker),
            "status": status, "current": current,
            "algorithm": parsed.algorithm if parsed else DEFAULT_ALGORITHM, "source": source,
            "pool_candidates": candidates, "pool_hit": hit,
            "location": str(target) if current else hit}


def _answer_verify(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec.checksum import DEFAULT_ALGORITHM, hasher, parse

    declared = parse(request["checksum"]) if request["checksum"] else None
    algorithm = declared.algorithm if declared else DEFAULT_ALGORITHM
    h = hasher(algorithm)
    h.update(request["data"].encode("utf-8"))
    digest = f"{algorithm}:{h.hexdigest()}"
    if declared is not None and str(declared) != digest:
        return {"digest": digest, "ok": False, "error": "DM070"}
    return {"digest": digest, "ok": True}


def _answer_autofill(request: dict[str, Any]) -> dict[str, Any]:
    from ..migrate import fill_checksums_text

    text, filled = fill_checksums_text(request["document"], request["checksums"])
    return {"document": text, "filled": filled}


def _answer_tree(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec.tree import TreeError, checksum_of_description
    from ..tree import TreeWalkError, checksum_from_manifest

    out: dict[str, Any] = {}
    for algorithm in ("tree-sha256", "dandi-zarr"):
        try:
            if "manifest" in request:
                value = checksum_from_manifest(request["manifest"], algorithm)
            else:
                value = f"{algorithm}:{checksum_of_description(request['entries'], algorithm)}"
            out[algorithm] = value
        except (TreeError, TreeWalkError):
            out[algorithm] = {"error": "DM120"}
    return out


def _answer_produce(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec import paramhash
    from ..spec import cache

    try:
        table = tomllib.loads(request["document"])
        ident = cache.identity(request["cachetype"], table, request.get("version", ""))
    except paramhash.ParameterError:
        return {"error": "DM100"}
    fmt = request.get("format") or "pickle"
    basename = request.get("basename") or cache.DEFAULT_BASENAME
    lay = cache.layout(request["datacache_dir"], ident)
    found = cache.find_in_description(ident, fmt, basename, request["datacache_dir"],
                                    request.get("pools", []), request.get("recorded"),
                                    request.get("files", {}))
    return {"cache_key": ident.cache_key, "record_key": ident.record_key, "folder": lay.folder,
            "marker": lay.marker, "lock": lay.lock, "staging": lay.staging,
            "data_entry": lay.entry(fmt, basename), **found}


def _answer_datacache(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec import cache

    data = tomllib.loads(request.get("document", ""))
    datacache = cache.legacy_datacache(data, request.get("datacache_dir"))
    cache.apply_journal(datacache, request.get("journal", ""))
    return {"datacache": dict(sorted(datacache.items()))}


def _answer_objects(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec import maintain as mnt
    from ..spec import cache
    from ..spec import resolution as res
    from ..spec.manifest import Manifest

    manifest = Manifest.from_dict(tomllib.loads(request["manifest"]))
    env = {"DATAMANIFEST_DATASETS_DIR": request["datasets_dir"],
           "DATAMANIFEST_DATACACHE_DIR": request["datacache_dir"],
           "DATAMANIFEST_DATASETS_POOLS": ":".join(request.get("pools", []))}
    platform = res.Platform(root=request["root"], hostname="", home="/nonexistent",
                            user_data_dir="/nonexistent", user_cache_dir="/nonexistent",
                            env=env, pathsep=":")
    resolved = res.resolve_storage(manifest, {}, {}, platform)
    state = tomllib.loads(request.get("state", ""))
    datacache = cache.legacy_datacache(state, request["datacache_dir"])
    cache.apply_journal(datacache, request.get("journal", ""))
    records = state.get("datasets", {})
    objects = mnt.objects_of(manifest, resolved, platform, records=records, datacache=datacache,
                             view=mnt.DescribedView(request.get("files", {})))
    out: dict[str, Any] = {"objects": [o.as_json() for o in objects]}
    if "select" in request:
        sel = request["select"]
        try:
            selection = mnt.Selection(
                terms=tuple(sel.get("terms", ())), kind=sel.get("kind"),
                formats=tuple(sel.get("formats", ())), states=tuple(sel.get("states", ())),
                present=sel.get("present"),
                older_than=mnt.parse_age(sel["older_than"]) if sel.get("older_than") else None,
                newer_than=mnt.parse_age(sel["newer_than"]) if sel.get("newer_than") else None,
                time_field="last_access" if sel.get("by_access") else "created",
                larger_than=mnt.parse_size(sel["larger_than"]) if sel.get("larger_than")
                else None,
                unreferenced=bool(sel.get("unreferenced")), outside=bool(sel.get("outside")),
                all=bool(sel.get("all")))
        except ValueError:
            return {**out, "error": "DM136"}
        picked = mnt.select(objects, selection, now=float(request.get("now", 0)))
        if not picked:
            return {**out, "error": "DM130"}
        out["selected"] = [o.id for o in picked]
    return out


def _answer_author(request: dict[str, Any]) -> dict[str, Any]:
    """AUT-003/AUT-004/AUT-010..AUT-013: names, new entries and imported lists."""
    from ..author.edit import new_errors
    from ..spec import author as aut

    op = request["operation"]
    if op == "name":
        source = aut.uri_name_source(request["uri"]) if "uri" in request else request["source"]
        try:
            return {"name": aut.derive_name(source, set(request.get("taken", [])))}
        except aut.NameTaken:
            return {"error": "DM141"}
    document = request.get("document", "")
    warnings: list[aut.Warning_] = []
    if op == "add":
        entries = [aut.Entry(uri=request["uri"], name=request.get("name", ""),
                             extract=bool(request.get("extract")),
                             version=request.get("version", ""))]
    else:
        fmt = request["format"]
        try:
            if fmt == "pooch":
                entries, warnings = aut.parse_pooch(request["text"], request.get("base_url", ""))
            elif fmt == "urls":
                entries, warnings = aut.parse_urls(request["text"])
            else:
                yaml = need("yaml", extra="dvc", feature="the conformance kind author (dvc)")
                try:
                    node = yaml.compose(request["text"], Loader=yaml.SafeLoader)
                except yaml.YAMLError:
                    return {"error": "DM143"}  # the position is the YAML parser's (AUT-012)
                entries, warnings = aut.parse_dvc(node, request.get("folder", ""))
                files = request.get("files", [])
                entries, more = aut.expand_folders(entries, lambda d: [
                    f[len(d) + 1:] for f in files if f.startswith(d + "/")])
                warnings += more
        except aut.SourceError as e:
            return {"error": e.code, "line": e.line, "column": e.column}
    try:
        planned = aut.plan(document, tomllib.loads(document), entries)
    except aut.NameTaken:
        return {"error": "DM141"}
    if op == "add" and planned.skipped:
        return {"error": "DM033"}
    bad = new_errors("document.toml", document, planned.text)
    if bad:
        return {"error": bad[0].code}
    out: dict[str, Any] = {"document": planned.text,
                           "entries": [{"name": e.name, **e.table()} for e in planned.added]}
    if op == "import":
        out["skipped"] = [e.uri for e, _ in planned.skipped]
        out["warnings"] = [{"code": w.code, "line": w.line, "column": w.column}
                           for w in warnings]
    return out


def _answer_chunks(request: dict[str, Any]) -> dict[str, Any]:
    """CHK-001..CHK-011: validate a chunk manifest, resolve keys and URLs, compare identities."""
    import json as _json

    from ..spec import virtual as chk

    op = request["operation"]
    if op == "url":
        try:
            return {"url": chk.resolve_url(request["url"], request.get("base"),
                                           request.get("document_url"))}
        except ValueError:
            return {"error": "DM150"}
    if op == "identity":
        from ..errors import VirtualError
        from ..io.base import Identity
        from ..virtual.store import check_identity

        rec = request["recorded"]
        now = request["now"]
        try:
            check_identity(chk.Source(rec["url"], rec["size"], rec.get("etag"),
                                      rec.get("last_modified")),
                           Identity(now["size"], now.get("etag"), now.get("last_modified")),
                           rec["url"])
        except VirtualError as e:
            return {"error": e.code}
        return {"ok": True}
    if op == "export":  # CHK-025: the kerchunk references of a chunk manifest
        from ..virtual import kerchunk

        manifest = chk.parse(_json.loads(request["text"]))
        return {"references": kerchunk.to_json(manifest, request.get("document_url"))}
    if op == "import":  # CHK-023: kerchunk references as a chunk manifest's nodes
        from ..errors import VirtualError
        from ..virtual import kerchunk

        refs = request["references"]
        try:
            m = kerchunk.from_refs(kerchunk.expand(refs), sizes=request.get("sizes") or {})
        except VirtualError as e:
            return {"error": e.code}
        kerchunk.restore_types(m, refs)
        return {"nodes": {p: {k: v for k, v in n.as_json().items() if k != "refs"}
                          for p, n in m.nodes.items()}}
    from ..check import check_chunk_manifest

    result = check_chunk_manifest(request["text"], "document.chunks.json")
    errors = [{"code": d.code, "line": d.line, "column": d.column} for d in result.errors]
    if op == "check":
        out: dict[str, Any] = {"errors": errors}
        if not errors:
            out["checksum"] = chk.document_checksum(_json.loads(request["text"]))
        return out
    if errors:
        return {"errors": errors}
    manifest = chk.parse(_json.loads(request["text"]))
    return {"results": [chk.resolve_key(manifest, k, request.get("document_url"))
                        for k in request["keys"]]}


def _answer_append(request: dict[str, Any]) -> dict[str, Any]:
    """APP-012, APP-021, APP-024: a slice described as data against a target's root
    metadata -> accepted (its length and the keys it creates and may replace) or the error
    code; a journal and a store listing -> the recovery action; APP-013: what lies at the
    target -> whether an append may write there."""
    from ..spec import appends as app

    op = request["operation"]
    if op == "encode-times":  # APP-014: a slice's times in the target's encoding
        from ..appends.prepare import encode_dates

        try:
            return {"values": encode_dates(request["slice"]["dates"],
                                           request["slice"].get("calendar", "standard"),
                                           request["target"]["units"],
                                           request["target"].get("calendar", "standard"),
                                           request["target"].get("dtype", "int64"))}
        except Exception as e:  # noqa: BLE001 - refused: the code is the answer
            return {"error": getattr(e, "code", "DM163")}
    try:
        if op == "target":
            return {"target": app.classify_target(request["target"], request.get("names") or [],
                                                  bool(request.get("journal")))}
        if op == "recover":
            return app.recovery(request["journal"], request.get("root_digest"),
                                set(request.get("present") or []),
                                set(request.get("backups") or [])).as_json()
        cfg = app.config_from_dict(request.get("config") or {})
        root_key = request.get("root_key", "zarr.json")
        view = app.view_from_root(request["root"], 3 if root_key == "zarr.json" else 2)
        count = app.check_slice(view, cfg, request["slice"], request.get("last_label"))
        plan = app.plan(view, cfg.append_dim, count)
        return {"accept": True, "old_length": plan.old_length, "new_length": plan.new_length,
                "creates": sorted(plan.creates), "replaces": sorted(plan.replaces)}
    except app.AppendSpecError as e:
        return {"error": e.code}


def _answer_policy(request: dict[str, Any]) -> dict[str, Any]:
    """MAN-012, FET-008: which datasets a fetch acts on and which it refuses, with why."""
    from ..check import check_text
    from ..spec.policy import dataset_names, refused

    result = check_text(request["manifest"], "datamanifest.toml", "manifest")
    fatal = [d for d in result.errors if d.code in ("DM001", "DM002", "DM004")]
    if result.data is None or fatal:
        return {"error": (fatal or result.errors)[0].code}
    data = result.data
    config_errors = []
    if request.get("checkout_config"):
        config_errors = check_text(request["checkout_config"], ".datamanifest/config.toml",
                                   "config").errors
    out = refused(data, result.errors, config_errors)
    names = dataset_names(data)
    select = request.get("select")
    asked = names if select is None else list(select)
    # the requirements of the datasets fetched are fetched too (FET-003)
    fetch: set[str] = set()
    stack = [n for n in asked if n not in out]
    while stack:
        n = stack.pop()
        if n in fetch or n not in data:
            continue
        fetch.add(n)
        reqs = data[n].get("requires") if isinstance(data[n], dict) else None
        stack.extend(r for r in (reqs if isinstance(reqs, list) else []) if isinstance(r, str))
    cfg = set(map(id, config_errors))
    return {"fetch": sorted(fetch), "refused": {
        n: [{"code": d.code, "line": d.line, "column": d.column,
             "document": "checkout_config" if id(d) in cfg else "manifest"} for d in out[n]]
        for n in sorted(out) if n in asked}}


def _answer_trust(request: dict[str, Any]) -> dict[str, Any]:
    """TRU-002..TRU-004, TRU-007, SEC-001: a manifest (and checkout configuration) -> its
    trust-relevant entries, their digest and the ones `check` reports; a run -> what it
    needs trust for; a URI or a text -> its redacted form and the secret it holds."""
    from ..spec import secrets
    from ..spec import trust as tru

    op = request["operation"]
    if op == "redact":
        if "text" in request:
            return {"redacted": secrets.redact_text(request["text"])}
        kind = secrets.secret_of(request["uri"])
        return {"redacted": secrets.redact_uri(request["uri"]),
                "secret": None if kind is None else kind.split()[0]}
    manifest_doc = tomllib.loads(request["manifest"])
    checkout = tomllib.loads(request.get("checkout_config", ""))
    if op == "entries":
        items = tru.entries(manifest_doc, checkout)
        return {"entries": [e.as_json() for e in items],
                "digest": tru.digest(request["manifest_path"], items),
                "reported": [{"document": e.document, "path": list(e.path)}
                             for e in items if tru.reason(e)]}
    from ..spec import resolution as res
    from ..spec.manifest import Manifest

    p = request["platform"]
    platform = res.Platform(root=p["root"], hostname=request.get("hostname", ""),
                            home=p["home"], user_data_dir=p["user_data_dir"],
                            user_cache_dir=p["user_cache_dir"], env=request.get("env", {}),
                            pathsep=p.get("pathsep", ":"))
    links = request.get("links", {})

    def realpath(path: str) -> str:  # described symbolic links: folder -> where it leads
        path = tru.normalize_path(path)
        for link in sorted(links, key=len, reverse=True):
            if tru.inside(path, link):
                return tru.normalize_path(links[link] + path[len(link):])
        return path

    try:
        found = tru.needs(Manifest.from_dict(manifest_doc), checkout,
                          tomllib.loads(request.get("user_config", "")), platform,
                          lang=request.get("language", "python"),
                          fetch=request.get("fetch", []), load=request.get("load", []),
                          builtin_formats=request.get("builtin_formats", []),
                          roots=bool(request.get("roots")),
                          datacache=bool(request.get("datacache")), realpath=realpath)
    except res.ResolutionError as e:
        return {"error": e.code}
    rows = [{k: v for k, v in n.as_json().items() if k != "what"} for n in found]
    return {"needs": sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))}


def _answer_resolve(request: dict[str, Any]) -> dict[str, Any]:
    from ..spec import resolution as res
    from ..spec.manifest import Manifest

    p = request["platform"]
    platform = res.Platform(root=p["root"], hostname=request["hostname"], home=p["home"],
                            user_data_dir=p["user_data_dir"], user_cache_dir=p["user_cache_dir"],
                            env=request.get("env", {}), pathsep=p.get("pathsep", ":"))
    manifest = Manifest.from_dict(tomllib.loads(request["manifest"]))
    checkout = tomllib.loads(request.get("checkout_config", ""))
    user = tomllib.loads(request.get("user_config", ""))
    try:
        resolved = res.resolve_storage(manifest, checkout, user, platform)
        datasets = {}
        for name, ds in manifest.datasets.items():
            entry: dict[str, Any] = {}
            if (ds.key or ds.uri or ds.uris or ds.storage_path) and not ds.lazy_access:
                entry["storage_path"], entry["managed"] = res.storage_path(name, ds, resolved,
                                                                           platform)
            entry["fetch"] = {lang: res.fetch_rung(ds, lang) for lang in request["languages"]}
            entry["load"] = {lang: res.load_rung(manifest, ds, lang,
                                                 request["builtin_formats"].get(lang, []))
                             for lang in request["languages"]}
            datasets[name] = entry
    except res.ResolutionError as e:
        return {"error": e.code}
    return {"settings": {k: v.as_json() for k, v in resolved.settings.items()},
            "datasets": datasets}


#: kind -> its answer (the protocol of fixtures/README.md); the kinds are this table's keys,
#: in the order of fixtures/index.json
ANSWERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "parse": _answer_document, "reject": _answer_document, "key": _answer_key,
    "hash": _answer_hash, "shell": _answer_shell, "resolve": _answer_resolve,
    "roundtrip": _answer_roundtrip, "discover": _answer_discover, "archive": _answer_archive,
    "layout": _answer_layout, "verify": _answer_verify, "autofill": _answer_autofill,
    "tree": _answer_tree, "produce": _answer_produce, "datacache": _answer_datacache,
    "objects": _answer_objects, "author": _answer_author, "chunks": _answer_chunks,
    "append": _answer_append, "policy": _answer_policy, "trust": _answer_trust,
}
#: every kind, in index order
KINDS: tuple[str, ...] = tuple(ANSWERS)
#: the kinds whose cases are TOML documents per document type (valid/ and invalid/)
DOCUMENT_KINDS: tuple[str, ...] = ("parse", "reject")
#: the kinds whose cases are JSON files in a folder named after the kind
JSON_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k not in DOCUMENT_KINDS)


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """Answer one protocol request with this implementation (``conformance serve``).

    Parameters
    ----------
    request : dict
        ``{"kind": ..., ...}`` as fixtures/README.md describes for that kind.

    Returns
    -------
    dict
        The answer document of that kind.

    Raises
    ------
    KeyError
        For a kind this implementation does not answer.
    MissingDependency
        DM170 when the case needs an extra that is not installed.
    """
    return ANSWERS[request["kind"]](request)
