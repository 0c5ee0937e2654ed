"""The conformance suite: its index, our answers and the runner (fixtures/README.md).

Any implementation of SCHEMA.md can be tested by a command that reads one JSON
*request* on stdin and writes one JSON *answer* on stdout:

=========  ===================================================  ==========================================
kind       request members                                      answer members
=========  ===================================================  ==========================================
parse      ``type``, ``document`` (TOML text)                   ``errors``, ``warnings`` (lists of
reject     ``type``, ``document``                               ``{code, line, column}``), ``normalized``
key        ``uri``, ``uris``, ``version``, ``key``              ``key`` or ``error`` (a DM code)
hash       ``document`` (key table TOML), ``cachetype``,        ``canonical_json``, ``hash``,
           ``version``                                          ``cache_key``, or ``error``
shell      ``template``, ``variables``                          ``argv`` or ``error``
resolve    ``manifest``, ``checkout_config``, ``user_config``   ``settings`` ({field: {value, rung}}),
           (TOML texts), ``env``, ``hostname``, ``platform``,   ``datasets`` ({name: {storage_path,
           ``languages``, ``builtin_formats``                   managed, fetch, load}}), or ``error``
roundtrip  ``type``, ``document``, ``comments`` (keep them)      ``document``: the text the implementation
                                                                writes for it (FMT-004, FMT-005), or
                                                                ``error`` (DM094), ``line``, ``column``
discover   ``cwd``, ``files`` (existing paths), ``env``         ``manifest`` (a path) or ``error``
archive    ``members`` ([{name, type, linkname}])               ``ok`` or ``error`` and ``member``
layout     ``manifest``, ``dataset``, ``root``,                 ``target``, ``is_dir``, ``staging``,
           ``datasets_dir``, ``pools``, ``files``               ``lock``, ``marker``, ``status``,
           ({path: content|null})                               ``current``, ``algorithm``, ``source``,
                                                                ``pool_candidates``, ``pool_hit``,
                                                                ``location``
verify     ``data`` (UTF-8 text), ``checksum``                  ``digest``, ``ok``, ``error`` (if not ok)
autofill   ``document``, ``checksums`` ({name: value})          ``document``, ``filled``
tree       ``entries`` (a described folder) or ``manifest``     ``tree-sha256``, ``dandi-zarr`` (each a
           (a tree manifest document)                           value or ``{"error": code}``)
produce    ``document`` (key table TOML), ``cachetype``,         ``cache_key``, ``record_key``,
           ``version``, ``format``, ``basename``,               ``folder``, ``marker``, ``lock``,
           ``datacache_dir``, ``pools``, ``recorded``,          ``staging``, ``data_entry``,
           ``files`` ({path: text or null for a folder})        ``candidates``, ``hit``, or ``error``
datacache  ``document`` (state TOML), ``name`` (its file        ``datacache`` (the table a reader
           name), ``journal`` (text), ``datacache_dir``         sees)
objects    ``manifest``, ``root``, ``datasets_dir``,            ``objects`` (MNT-002 fields each),
           ``datacache_dir``, ``pools``, ``state`` (TOML),      ``selected`` (ids), or ``error``
           ``journal``, ``files`` ({path: text, null or         (DM130, DM136) with ``objects``
           {content, mtime, atime}}), ``now``, ``select``
policy     ``manifest``, ``checkout_config`` (TOML texts),      ``fetch`` (names), ``refused`` ({name:
           ``select`` (names, or null for all)                  [{code, line, column, document}]}), or
                                                                ``error`` (a document refused whole)
=========  ===================================================  ==========================================

Exit status 0: answered (also when the answer reports an error in the input);
3: this kind is not supported (counted as skipped); anything else: a failure.
``datamanifest conformance serve`` is our implementation of the protocol.

Three parts: :mod:`~datamanifest.conformance.index` (the cases, ``index.json`` and the
pins), :mod:`~datamanifest.conformance.answers` (one answer per kind; the kinds are its
table's keys) and :mod:`~datamanifest.conformance.runner` (requests, comparison, ``serve``
and ``run``).
"""

from .answers import ANSWERS, KINDS, answer
from .index import SPEC_VERSION, Case, build_index, checksums, default_fixtures_dir, load_cases, \
    render_index
from .runner import EXIT_UNSUPPORTED, RunResult, compare, request_and_expected, run, serve

__all__ = ["ANSWERS", "KINDS", "SPEC_VERSION", "EXIT_UNSUPPORTED", "Case", "RunResult",
           "answer", "build_index", "checksums", "compare", "default_fixtures_dir",
           "load_cases", "render_index", "request_and_expected", "run", "serve"]
