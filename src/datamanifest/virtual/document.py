"""Writing and describing chunk manifest documents (SCHEMA.md CHK-001, CHK-008, CHK-011).

:func:`dumps` lays a document out one source and one node per line, so that diffs and
``check`` positions point at a node; :func:`write` writes it atomically; :func:`info`
describes one (arrays, chunk counts, bytes referenced, whether each source still matches).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..spec import virtual


def dumps(doc: dict[str, Any]) -> str:
    """The document's text: top-level members on their own lines, each source and each node
    compact on one line."""
    def one(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    lines = ["{"]
    members = []
    for k, v in doc.items():
        if k == "sources":
            inner = ",\n".join("  " + one(s) for s in v)
            members.append(f' "sources": [\n{inner}\n ]' if v else ' "sources": []')
        elif k == "nodes":
            inner = ",\n".join(f"  {one(p)}: {one(n)}" for p, n in v.items())
            members.append(f' "nodes": {{\n{inner}\n }}')
        else:
            members.append(f" {one(k)}: {one(v)}")
    lines.append(",\n".join(members))
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(manifest: virtual.ChunkManifest, path: str | os.PathLike) -> str:
    """Write ``manifest`` at ``path`` (temp file, fsync, rename) with its checksum
    (CHK-008); returns the checksum."""
    from ..store.atomic import write_text

    doc = manifest.as_json()
    write_text(Path(path), dumps(doc))
    return doc["checksum"]


def info(manifest: virtual.ChunkManifest, document_url: str | None = None, *,
         verify: bool = False, credentials: dict[str, str] | None = None) -> dict[str, Any]:
    """A description of a chunk manifest: per array its shape, data type, chunk shape and
    counts of referenced, inline and missing chunks and bytes referenced; per source its
    URL, size and whether it still matches (``ok``, ``changed``, ``unreachable``; with
    ``verify``, whole-file checksums are compared too). ``credentials`` maps a recorded
    (redacted, SEC-002) source URL to the URL to read it with."""
    from ..errors import DataManifestError
    from ..errors import VirtualError
    from ..io.places import open_ranges
    from .store import check_identity

    arrays = []
    per_source = [0] * len(manifest.sources)
    for node in manifest.arrays():
        refs = node.refs
        n_ref = nbytes = 0
        for _, s, _, length in refs.references():
            n_ref += 1
            nbytes += length
            per_source[s] += length
        arrays.append({"path": node.path, "shape": node.metadata["shape"],
                       "data_type": node.metadata["data_type"],
                       "chunk_shape": list(virtual.chunk_shape(node.metadata)),
                       "chunks": refs.count, "referenced": n_ref, "inline": len(refs.inline),
                       "missing": refs.count - n_ref - len(refs.inline),
                       "bytes_referenced": nbytes,
                       "codecs": [c["name"] for c in node.metadata["codecs"]]})
    sources = []
    for i, src in enumerate(manifest.sources):
        try:
            url = manifest.url_of(i, document_url)
        except ValueError as e:  # a relative URL and no location to resolve it against
            sources.append({"url": src.url, "size": src.size, "bytes_referenced": per_source[i],
                            "etag": src.etag, "last_modified": src.last_modified,
                            "checksum": src.checksum, "status": "unreachable",
                            "problem": str(e)})
            continue
        row: dict[str, Any] = {"url": url, "size": src.size, "bytes_referenced": per_source[i],
                               "etag": src.etag, "last_modified": src.last_modified,
                               "checksum": src.checksum}
        try:
            reader = open_ranges((credentials or {}).get(url, url), VirtualError)
            try:
                check_identity(src, reader.identity(), url)
                row["status"] = "ok"
                if verify and src.checksum:
                    row["status"] = "ok" if _whole_checksum(reader, src) else "changed"
            finally:
                reader.close()
        except DataManifestError as e:  # DM152 changed; absent, unreachable, no library
            row["status"] = "changed" if e.code == "DM152" else "unreachable"
            row["problem"] = e.message
        sources.append(row)
    return {"arrays": arrays, "sources": sources, "checksum": manifest.checksum,
            "bytes_referenced": sum(per_source)}


def _whole_checksum(reader, src: virtual.Source) -> bool:
    from ..spec import checksum as _checksum

    parsed = _checksum.parse(src.checksum)
    h = _checksum.hasher(parsed.algorithm)
    step = 16 * 1024 * 1024
    for off in range(0, src.size, step):
        h.update(reader.read_ranges([(off, min(step, src.size - off))])[0])
    return h.hexdigest() == parsed.hexdigest


def _dtype(value: Any) -> str:
    return value if isinstance(value, str) else (value or {}).get("name", str(value))


def html(manifest: virtual.ChunkManifest, document_url: str | None = None) -> str:
    """The chunk manifest as HTML: per array its data type, shape, chunk shape and chunk
    counts; per source its URL, size and whether it still matches (size, ETag and
    modification time against the recorded identity, CHK-011: a ``stat`` for a local file,
    a ``HEAD`` for a remote one)."""
    from ..display import box, code, esc, human_size, state_html, table

    described = info(manifest, document_url or getattr(manifest, "document_url", None))
    arrays = [(code(a["path"]), esc(_dtype(a["data_type"])), esc(tuple(a["shape"])),
               esc(tuple(a["chunk_shape"])),
               esc(f"{a['chunks']} ({a['referenced']} referenced, {a['inline']} inline, "
                   f"{a['missing']} missing)"), esc(human_size(a["bytes_referenced"])))
              for a in described["arrays"]]
    sources = []
    for s in described["sources"]:
        state = state_html(s["status"])
        if s.get("problem"):
            state += f"<br/>{esc(s['problem'])}"
        sources.append((code(s["url"]), esc(human_size(s["size"])),
                        esc(human_size(s["bytes_referenced"])), state))
    matching = sum(1 for s in described["sources"] if s["status"] == "ok")
    summary = (f"{len(described['arrays'])} array(s), {len(described['sources'])} source(s) "
               f"({matching} matching), {esc(human_size(described['bytes_referenced']))} referenced"
               + (f", {code(described['checksum'])}" if described["checksum"] else ""))
    return box("chunk manifest", summary,
               table(["array", "data type", "shape", "chunk shape", "chunks", "bytes"],
                     arrays, total=len(arrays), caption="arrays"),
               table(["source", "size", "referenced", "state"], sources, total=len(sources),
                     caption="sources"))


# the pure model's notebook display (INT-030) is this I/O edge's: it checks each source (the
# hook is a global of the module defining ChunkManifest, spec/virtual/model.py)
virtual.model.HTML_RENDERER = html
