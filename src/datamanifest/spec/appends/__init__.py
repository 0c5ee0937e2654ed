"""Appending to Zarr stores: the configuration, the committed view, the plan of one append
and the recovery decision (SCHEMA.md §26, APP-001..APP-030).

Pure: documents in, decisions out; no file system. :mod:`datamanifest.appends` does the I/O.

* :class:`AppendConfig` -- APP-001 (the TOML document), :func:`merge` -- APP-002;
* :class:`CommittedView` -- the committed view read from a root metadata document (APP-010), for
  Zarr v3 (``zarr.json`` with consolidated metadata) and v2 (``.zmetadata``);
* :func:`parse_step`, :func:`check_labels` -- append steps and labels (APP-012);
* :func:`plan` -- the keys one append creates and replaces (APP-021, APP-022);
* :func:`recovery` -- what the next start does with a journal (APP-024).
"""

from __future__ import annotations

from .config import (
    AppendConfig,
    AppendSpecError,
    AppendStep,
    COMPRESSORS,
    Encoding,
    JOURNAL_VERSION,
    LockOptions,
    Meta,
    Polling,
    VariableSpec,
    check_labels,
    config_from_dict,
    describe_step,
    merge,
    normalize_config,
    parse_step,
)
from .view import (
    AppendPlan,
    ArrayMeta,
    CommittedView,
    Recovery,
    V2_ROOT,
    V3_ROOT,
    ZARR_MARKERS,
    array_document,
    array_keys,
    check_slice,
    chunk_key,
    classify_target,
    decoded_kind,
    digest,
    dtype_fits,
    is_metadata_key,
    metadata_documents,
    plan,
    recovery,
    root_bytes,
    root_key,
    view_from_root,
    with_length,
)

__all__ = [
    "AppendConfig",
    "AppendSpecError",
    "AppendStep",
    "COMPRESSORS",
    "Encoding",
    "JOURNAL_VERSION",
    "LockOptions",
    "Meta",
    "Polling",
    "VariableSpec",
    "check_labels",
    "config_from_dict",
    "describe_step",
    "merge",
    "normalize_config",
    "parse_step",
    "AppendPlan",
    "ArrayMeta",
    "CommittedView",
    "Recovery",
    "V2_ROOT",
    "V3_ROOT",
    "ZARR_MARKERS",
    "array_document",
    "array_keys",
    "check_slice",
    "chunk_key",
    "classify_target",
    "decoded_kind",
    "digest",
    "dtype_fits",
    "is_metadata_key",
    "metadata_documents",
    "plan",
    "recovery",
    "root_bytes",
    "root_key",
    "view_from_root",
    "with_length",
]
