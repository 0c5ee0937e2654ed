"""Authoring verbs: write the manifest for its user (SCHEMA.md §24).

``init`` starts a manifest; ``add`` declares, fetches and records one dataset; ``remove``
takes one out; ``show`` tells everything about one; ``update_checksums`` re-hashes what
is present; :func:`import_list` declares many from a pooch registry, DVC files or a URL
list. Every edit is made on the user's text under the manifest lock, keeps comments and
formatting (MAN-004), and is refused when it would add an error (AUT-002).
"""

from .edit import (
    AddResult,
    ChecksumChange,
    add,
    init_manifest,
    remove,
    show,
    update_checksums,
)
from .importers import ImportResult, import_list

__all__ = ["init_manifest", "add", "AddResult", "remove", "show", "update_checksums",
           "ChecksumChange", "import_list", "ImportResult"]
