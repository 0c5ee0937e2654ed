"""Running fetchers: Python bindings in-process and shell templates as argv (SCHEMA.md LAD-020).

A present binding that cannot be imported is DM082; a fetcher that raises or exits
non-zero is DM083. Arguments of table bindings get the variables of SH-006
substituted in their strings, once, never re-expanded.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import FetchError
from ..interrupt import run_child
from ..spec import shell as _shell


def resolve_binding(ref: str, root: Path) -> Any:
    """Import ``module:function`` (dotted names allowed on both sides) with the project root
    on the import path. Raises FetchError DM082."""
    module_name, _, attr = ref.partition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise FetchError(f"binding {ref!r} cannot be imported: {e}", code="DM082",
                         hint="check the module is installed or lives in the project folder") \
            from e
    if not callable(obj):
        raise FetchError(f"binding {ref!r} is not callable", code="DM082")
    return obj


def substitute(value: Any, variables: dict[str, Any]) -> Any:
    """SH-002 substitution in every string of ``value`` (lists and tables recursively)."""
    if isinstance(value, str):
        return _shell._substitute(value, variables, 0)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def run_fetcher(project, name: str, rung: dict[str, Any], download_path: Path,
                variables: dict[str, Any]) -> None:
    """Run the own-fetcher or shell rung of dataset ``name`` writing ``download_path``."""
    variables = dict(variables, download_path=str(download_path))
    download_path.parent.mkdir(parents=True, exist_ok=True)
    ds = project.dataset(name)
    if rung["rung"] == "shell":
        try:
            argv = _shell.to_argv(rung["ref"], variables)
        except _shell.TemplateError as e:
            raise FetchError(f"dataset {name!r}: shell template: {e}", code=e.code) from e
        try:
            proc = run_child(argv, cwd=project.root, capture_output=True, text=True)
        except OSError as e:
            raise FetchError(f"dataset {name!r}: cannot run {argv[0]!r}: {e.strerror}",
                             code="DM083", hint="check the shell template's program") from e
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise FetchError(f"dataset {name!r}: shell fetcher exited {proc.returncode}: "
                             + " | ".join(tail), code="DM083")
        return
    lang = ds.lang.get("python") if isinstance(ds.lang.get("python"), dict) else {}
    binding = lang.get("fetcher") or ds.fetcher
    ref = binding if isinstance(binding, str) else (
        binding.get("ref") if isinstance(binding, dict) else binding.ref)
    fn = resolve_binding(ref, project.root)
    try:
        if isinstance(binding, str):
            fn(str(download_path))
        else:
            args = binding.get("args", []) if isinstance(binding, dict) else binding.args
            kwargs = binding.get("kwargs", {}) if isinstance(binding, dict) else binding.kwargs
            fn(*substitute(list(args), variables), **substitute(dict(kwargs), variables))
    except Exception as e:  # the user's code: report, never crash the tool
        raise FetchError(f"dataset {name!r}: fetcher {ref!r} raised {type(e).__name__}: {e}",
                         code="DM083") from e


#: language -> peer command names probed on PATH (LAD-003; the ecosystem's Peer-CLI contract)
PEERS = {"julia": ("datamanifest-julia", "DataManifest"), "r": ("datamanifest-r",)}


def find_peer(language: str) -> str | None:
    """The first peer tool for ``language`` on PATH that answers ``--version`` (probe first)."""
    import shutil

    for name in PEERS.get(language, ()):
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            if subprocess.run([exe, "--version"], capture_output=True, timeout=30).returncode == 0:
                return exe
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def run_peer(project, name: str, exe: str, datasets_dir: Path) -> None:
    """Ask a peer tool to fetch ``name`` into the shared store (LAD-003). Raises DM083."""
    cmd = [exe, "fetch", name, "--datasets-toml", str(project.manifest_path),
           "--datasets-folder", str(datasets_dir)]
    proc = run_child(cmd, cwd=project.root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        raise FetchError(f"dataset {name!r}: peer {Path(exe).name} failed "
                         f"({proc.returncode}): {tail}", code="DM083")
