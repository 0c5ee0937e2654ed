"""This machine's configuration: manifest discovery, configuration files, platform and the
resolved storage settings (SCHEMA.md §2 DISC-001, §14 RES-001, CFG-001..CFG-003).

The I/O edge of :mod:`datamanifest.spec.resolution` (the pure ladder) and
:mod:`datamanifest.spec.discovery`: it reads the environment, the file system and the
configuration files, so that every capability resolves storage the same way without
importing :mod:`datamanifest.project`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import Diagnostic, ManifestError
from .spec.manifest import Manifest
from .store.layout import STATE_DIR


def discover(start: Path | None = None) -> Path:
    """Find the manifest (DISC-001, DISC-002).

    ``$DATAMANIFEST_TOML`` wins when set; otherwise each folder from ``start``
    (default: the working directory) up to the file-system root is searched
    for the names of :data:`datamanifest.spec.discovery.MANIFEST_NAMES`, in that order.
    Raises :class:`ManifestError` (DM003) when none is found.
    """
    from .spec.discovery import discover as _discover

    here = (start or Path.cwd()).resolve()
    found = _discover(here.as_posix(), os.path.isfile, os.environ)
    if found is not None:
        return Path(found)
    raise ManifestError(
        f"no manifest found in {here} or its parents", code="DM003",
        hint="create datamanifest.toml, or pass its path",
    )


@dataclass(frozen=True)
class StorageConfig:
    """The resolved storage settings of a project (STO-006). Paths are absolute."""

    datasets_dir: Path
    datasets_dir_source: str  # the ladder rung that set it (SCHEMA.md RES-001)
    lock_stale_age: float  # seconds
    symbols: dict[str, str]
    resolved: object = None  # datamanifest.spec.resolution.Resolved
    platform: object = None  # datamanifest.spec.resolution.Platform
    checkout: dict | None = None  # the checkout configuration document, as parsed (CFG-001)
    user: dict | None = None  # the user configuration document, as parsed (CFG-001)


def user_config_path() -> Path:
    """The user configuration file ``<user config dir>/datamanifest/config.toml`` (CFG-001)."""
    import platformdirs

    return Path(platformdirs.user_config_dir()) / "datamanifest" / "config.toml"


def checkout_config_path(root: Path) -> Path:
    """The checkout configuration file ``<root>/.datamanifest/config.toml`` (CFG-001)."""
    return root / STATE_DIR / "config.toml"


def read_config(path: Path) -> dict:
    """A configuration document as a dict ({} when absent). Raises ManifestError on bad TOML."""
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ManifestError(f"cannot read configuration {path}: {e}", code="DM001",
                            file=str(path), hint="run `datamanifest check` on it") from e


def check_configs(root: Path) -> list[Diagnostic]:
    """The diagnostics of the configuration files a run reads (CFG-001, CFG-003): the
    checkout file of the project at ``root`` and the user file, when they exist."""
    from .check import check_text

    out: list[Diagnostic] = []
    for path in (checkout_config_path(root), user_config_path()):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            continue  # read_config reports it when storage is resolved
        out.extend(check_text(text, str(path), "config").diagnostics)
    return out


def current_platform(root: Path):
    """The :class:`~datamanifest.spec.resolution.Platform` of this machine and process."""
    import socket

    import platformdirs

    from .spec.resolution import Platform

    return Platform(root=str(root), hostname=socket.gethostname(), home=str(Path.home()),
                    user_data_dir=platformdirs.user_data_dir(),
                    user_cache_dir=platformdirs.user_cache_dir(), env=dict(os.environ))


def resolve_storage(manifest: Manifest, root: Path) -> StorageConfig:
    """Resolve storage with the full ladder of SCHEMA.md §14 on this machine.

    Raises :class:`ManifestError` (DM060 unknown symbol, DM061 bad setting).
    """
    from .spec.resolution import ResolutionError
    from .spec.resolution import resolve_storage as _resolve

    platform = current_platform(root)
    checkout = read_config(checkout_config_path(root))
    user = read_config(user_config_path())
    try:
        resolved = _resolve(manifest, checkout, user, platform)
    except ResolutionError as e:
        raise ManifestError(f"storage: {e}", code=e.code,
                            hint="see `datamanifest check` and your configuration files") from e
    return StorageConfig(
        datasets_dir=Path(resolved.get("datasets_dir")),
        datasets_dir_source=resolved.settings["datasets_dir"].rung,
        lock_stale_age=resolved.get("lock_stale_age"),
        symbols=resolved.symbols,
        resolved=resolved,
        platform=platform,
        checkout=checkout,
        user=user,
    )
