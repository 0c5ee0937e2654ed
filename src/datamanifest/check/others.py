"""Checking the documents other than the manifest (SCHEMA.md §8, §14, §16, §26.1):
configuration, state file, config and metadata sidecars, append configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .result import Collector
from .semantics import meta_typos, referenced_symbols, secret_warning, storage_typos
from .structure import describe

#: document type -> (code of a structural fault, what the document is called)
OTHER = {
    "config": ("DM061", "configuration"),
    "state": ("DM092", "state file"),
    "config-sidecar": ("DM110", "config sidecar"),
    "metadata-sidecar": ("DM112", "metadata sidecar"),
    "append-config": ("DM160", "append configuration"),
}



def check_other(doc_type: str, data: dict[str, Any], col: Collector) -> None:
    """Structure (models first, JSON Schema on rejection) and the rules of each document."""
    from .. import schemas
    from ..spec import documents, paramhash

    code, label = OTHER[doc_type]
    meta = data.get("_META")
    if doc_type == "state":
        version = meta.get("schema") if isinstance(meta, dict) else None
        if meta is None:  # PRD-032: a state file without _META is the legacy schema 1
            col.add("DM093", (), "a state file without _META is the legacy schema 1; it is "
                    "read and rewritten as schema 5 on the next write",
                    "run `datamanifest fetch` to upgrade it")
            return
        if type(version) is int and 1 <= version <= 4:
            col.add("DM093", ("_META", "schema"), f"state schema {version} is a legacy shape; "
                    "it is read and rewritten as schema 5 on the next write",
                    "run `datamanifest fetch` to upgrade it")
            return
        if type(version) is int and version > 5:
            col.add("DM004", ("_META", "schema"), f"state schema {version} is newer than this tool "
                    "reads (5)", "upgrade datamanifest")
            return
    if doc_type == "config":  # CFG-003: misspelt storage fields (MAN-006)
        storage_typos(data, (), referenced_symbols(data), col, label="configuration: ")
        meta_typos(data.get("_META"), col, label="configuration: ")
    found = len(col.items)
    try:
        documents.MODELS[doc_type].model_validate(data)
        structural_ok = True
    except ValueError:
        structural_ok = False
    if not structural_ok:
        for err in schemas.validator(doc_type).iter_errors(data):
            path = tuple(err.absolute_path)
            if path == ("_META", "schema") or (path == ("_META",) and err.validator == "required"
                                               and "schema" in err.message):
                col.add("DM004", path, f"{label}: {describe(err, '_META.schema')}",
                        "write schema = 1" if
                        doc_type != "state" else "write schema = 5")
                continue
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                known = set(err.schema.get("properties", {}))
                extra = [k for k in err.instance if k not in known]
                if extra:  # point at the unknown key itself
                    import difflib

                    close = difflib.get_close_matches(extra[0], sorted(known), n=1)
                    where = ".".join(map(str, (*path, extra[0])))
                    col.add(code, (*path, extra[0]), f"{label}: unknown field {where!r}",
                            f"did you mean {close[0]!r}?" if close else
                            f"see SCHEMA.md for the {label}", at_key=True)
                    continue
            where = ".".join(map(str, path)) or "document"
            col.add(code, path, f"{label}: {describe(err, where)}",
                    f"see SCHEMA.md for the {label}", at_key=err.validator == "required")
        if len(col.items) == found:  # the models reject what the schema accepts: never hide it
            col.add(code, (), f"{label}: structurally invalid")
        return
    if doc_type == "append-config":  # APP-001: the step's grammar, beyond the schema
        from ..spec.appends import AppendSpecError, parse_step

        try:
            parse_step(data.get("append_step"))
        except AppendSpecError as e:
            col.add("DM160", ("append_step",), f"append configuration: {e.message}",
                    "append_step is +, -, a number or a duration like 1D, 12h, -30m")
    if doc_type == "config":
        from ..spec import trust as _trust
        from ..spec.secrets import redact_text

        checkout = bool(col.file) and Path(col.file).parent.name == ".datamanifest"
        for e in _trust.entries({}, data):
            why = _trust.reason(e) if checkout else None
            if why:  # TRU-007: a project-supplied configuration (CFG-001)
                col.add("DM181", e.path, f"{redact_text(e.show())}: {why}",
                        "a run that uses it needs the project's manifest trusted: "
                        "`datamanifest trust --show`", severity="info")
            if isinstance(e.value, str):
                secret_warning(col, e.path, e.value, f"{'.'.join(e.path)}:")
    if doc_type == "config-sidecar":
        table = {k: v for k, v in data.items() if k != "_META"}
        try:
            actual = paramhash.parameter_hash(table)
        except paramhash.ParameterError as e:
            col.add("DM100", e.path, f"config sidecar: {e}", "parameters are strings, numbers, "
                    "booleans, arrays and tables")
            return
        if actual != meta["hash"]:
            col.add("DM111", ("_META", "hash"), f"config sidecar: _META.hash {meta['hash']} does "
                    f"not match the key table, which hashes to {actual}",
                    "the artifact is not a cache hit; recompute it or fix the key table")
    if doc_type == "state":
        for key, rec in (data.get("datasets") or {}).items():
            sha, chk = rec.get("sha256"), rec.get("checksum")
            if sha and chk and chk.startswith("sha256:") and chk != f"sha256:{sha}":
                col.add("DM023", ("datasets", key, "sha256"), f"state record {key!r}: sha256 "
                        "and checksum disagree", "the state file is regenerable: fetch again")
