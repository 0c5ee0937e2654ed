"""Layer 2 of checking a manifest: the JSON Schema's errors mapped to stable codes (SCHEMA.md §9,
VAL-002), and the lenient models the semantic layer judges when the schema rejected fields."""

from __future__ import annotations

import difflib
from typing import Any

from ..spec import checksum as _checksum
from ..spec import keys as _keys
from ..spec.manifest import DATASET_FIELDS, SUPPORTED_SCHEMAS, Dataset
from .result import Collector, toml_type, wanted


def _is_binding_path(path: tuple) -> bool:
    """Does a schema error's path point at a binding a Python reader runs (MAN-040, MAN-042)?
    ``(ds, "loader")``, ``(ds, "_LANG", "python", "fetcher")``, ``("_LOADERS", fmt)``,
    ``("_LANG", "python", "loaders", fmt)``."""
    path = tuple(path)
    if len(path) == 2 and (path[0] == "_LOADERS" or path[1] in ("fetcher", "loader")):
        return True
    if len(path) >= 3 and path[-3:-1] == ("_LANG", "python"):
        return path[-1] in ("fetcher", "loader")
    return len(path) >= 4 and path[-4:-1] == ("_LANG", "python", "loaders")


# -- layer 2: JSON Schema --------------------------------------------------------------
def schema_layer(data: dict[str, Any], col: Collector) -> dict[str, set[str] | None]:
    """Validate against the JSON Schema; return the faulty fields per dataset (None: all)."""
    from .. import schemas

    bad: dict[str, set[str] | None] = {}
    for err in schemas.validator("manifest").iter_errors(data):
        path = tuple(err.absolute_path)
        if path and isinstance(path[0], str) and not path[0].startswith("_"):
            name = path[0]
            if len(path) == 1 and err.validator == "additionalProperties":
                known = err.schema.get("properties", {})
                fields = {k for k in err.instance if not k.startswith("_") and k not in known}
            elif len(path) == 1 and err.validator == "not":
                fields = {"uris"}
            elif len(path) >= 2:
                fields = {path[1]}
            else:
                fields = None
            if fields is None or bad.get(name, set()) is None:
                bad[name] = None
            else:
                bad.setdefault(name, set()).update(fields)  # type: ignore[union-attr]
        _map_schema_error(err, path, data, col)
    return bad


def _map_schema_error(err: Any, path: tuple, data: dict[str, Any], col: Collector) -> None:
    kind = err.validator
    inst = err.instance
    if path == ("_META", "schema"):
        col.add("DM004", path, f"_META.schema must be an integer among "
                f"{', '.join(map(str, SUPPORTED_SCHEMAS))}, got {inst!r}", "write schema = 1")
        return
    if len(path) == 1 and not str(path[0]).startswith("_") and kind == "type":
        col.add("DM005", path, f"top-level key {path[0]!r} is not a table; every dataset is a "
                "table", f"write [{path[0]}] with fields below it, or prefix structural keys with _",
                at_key=True)
        return
    if len(path) == 1 and kind == "additionalProperties":
        known = set(err.schema.get("properties", {}))
        for k in inst:
            if k in known or k.startswith("_"):
                continue
            close = difflib.get_close_matches(k, DATASET_FIELDS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else (
                "known fields: " + ", ".join(DATASET_FIELDS) + "; prefix private fields with _")
            col.add("DM010", (*path, k), f"dataset {path[0]!r}: unknown field {k!r}", hint,
                    at_key=True)
        return
    if len(path) == 1 and kind == "not":
        col.add("DM012", (*path, "uris"), f"dataset {path[0]!r}: uri and uris are mutually "
                "exclusive", "keep uri for one source or uris for several", at_key=True)
        return
    if path and path[0] == "_STORAGE":
        where = ".".join(map(str, path))
        want = wanted(err) if kind == "type" else "valid"
        col.add("DM061", path, f"{where} must be {want}, not {toml_type(inst)}",
                "see SCHEMA.md RES-002 for the storage fields and their types")
        return
    name = path[0] if path else ""
    fld = path[1] if len(path) > 1 else ""
    if _is_binding_path(path):
        if isinstance(inst, dict):
            extra = [k for k in inst if k not in ("ref", "args", "kwargs")]
            if extra:
                col.add("DM014", (*path, extra[0]), _binding_message(inst),
                        "a binding table has ref, args and kwargs only", at_key=True)
                return
        col.add("DM014", path, _binding_message(inst),
                "write \"module:function\" or {ref = \"module:function\", args = [...], "
                "kwargs = {...}}")
        return
    if kind == "type":
        want = wanted(err)
        where = f"dataset {name!r}: " if path and not str(name).startswith("_") else ""
        label = ".".join(str(p) for p in path[1:]) if where else ".".join(map(str, path))
        col.add("DM011", path, f"{where}{label or 'value'} must be {want}, not {toml_type(inst)}",
                _type_hint(fld))
        return
    if kind == "pattern" and fld == "checksum":
        code, msg, hint = _checksum.explain_invalid(inst)
        col.add(code, path, f"dataset {name!r}: {msg}", hint)
        return
    if kind == "pattern" and fld == "sha256":
        col.add("DM020", path, f"dataset {name!r}: sha256 must be 64 lowercase hex digits",
                "better: checksum = \"sha256:<hex>\"")
        return
    if kind == "pattern" and fld == "key":
        try:
            _keys.check_key(inst)
            why = f"the key {inst!r} is not a safe relative path"
        except _keys.UnsafeKey as e:
            why = str(e)
        col.add("DM030", path, f"dataset {name!r}: {why}",
                "a key is a relative path of non-empty segments without '.' or '..'")
        return
    if kind == "pattern" and fld == "storage_path":
        col.add("DM032", path, f"dataset {name!r}: storage_path {inst!r} has a '..' segment",
                "point storage_path at the final location without '..'")
        return
    if kind == "minLength" and fld == "uris":
        col.add("DM015", path, f"dataset {name!r}: empty string in uris", "remove it")
        return
    col.add("DM011", path, f"{'.'.join(map(str, path)) or 'document'}: {err.message}")


def _type_hint(fld: Any) -> str | None:
    if fld in ("aliases", "requires", "uris"):
        return f'write {fld} = ["..."]'
    if fld in ("skip_checksum", "skip_download", "lazy_access", "delegate", "extract"):
        return f"write {fld} = true or false (unquoted)"
    if fld in ("version",):
        return 'quote it: version = "1.0"'
    return None


def _binding_message(inst: Any) -> str:
    if isinstance(inst, str):
        return f"binding {inst!r} is not of the form module:function"
    if isinstance(inst, dict):
        extra = [k for k in inst if k not in ("ref", "args", "kwargs")]
        if extra:
            return f"binding table has unknown key(s) {', '.join(extra)}; allowed: ref, args, kwargs"
        if "ref" not in inst:
            return "binding table needs ref = \"module:function\""
        return "binding table has a malformed ref, args (array) or kwargs (table)"
    return f"a binding must be a string or a table, not {toml_type(inst)}"


# -- layer 3: semantic rules ------------------------------------------------------------------
def lenient_datasets(data: dict[str, Any], bad: dict[str, set[str] | None]) -> dict[str, Dataset]:
    """Models of the datasets, leaving out the fields the JSON Schema rejected."""
    datasets: dict[str, Dataset] = {}
    for name, table in data.items():
        if name.startswith("_") or not isinstance(table, dict):
            continue
        if name in bad:
            faulty = bad[name]
            if faulty is None:
                continue
            # judge the rest of the dataset without the fields layer 2 rejected
            table = {k: v for k, v in table.items() if k not in faulty}
        try:
            datasets[name] = Dataset.model_validate(table)
        except Exception:  # structural faults are reported by layer 2
            continue
    return datasets


def describe(err: Any, where: str) -> str:
    """A readable sentence for a JSON Schema error (no regular expressions shown)."""
    kind, inst = err.validator, err.instance
    if kind == "type":
        want = wanted(err)
        return f"{where} must be {want}, not {toml_type(inst)}"
    if kind == "pattern":
        return f"{where} has an invalid form: {inst!r}"
    if kind == "required":
        missing = [p for p in err.validator_value if p not in inst]
        return f"{where} lacks {', '.join(missing)}"
    if kind in ("minLength", "minimum"):
        return f"{where} is too small: {inst!r}"
    if kind in ("const", "enum"):
        return f"{where} must be {err.validator_value!r}, not {inst!r}"
    if kind in ("anyOf", "oneOf"):
        return f"{where}: {toml_type(inst)} is not allowed here"
    return f"{where}: {err.message}"
