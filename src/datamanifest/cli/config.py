"""``trust``, ``where``, ``config``: this machine's settings for the project (SCHEMA.md §14,
§27.1)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import command, group, info, open_project

# -- trust ---------------------------------------------------------------------------------------
@command("trust")
@click.option("--show", is_flag=True, help="Print whether the manifest is trusted and what "
              "it would run or where it would write; record nothing. Exit 1 when it is not "
              "trusted and something in it needs trust.")
@click.option("--revoke", is_flag=True, help="Forget this manifest's trust.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON on stdout.")
@click.pass_context
def trust_cmd(ctx: click.Context, show: bool, revoke: bool, as_json: bool) -> None:
    """Trust this manifest to run the code it names and to use the locations it sets,
    like `direnv allow` (SCHEMA.md §27.1).

    Lists its trust-relevant entries (shell templates, fetcher and loader bindings,
    storage settings and storage paths, and those of .datamanifest/config.toml), then
    records the SHA-256 of exactly that content in your configuration folder. Any change
    of it revokes the trust. Plain uri datasets stored in the project or in your own
    stores never need it.
    """
    from .. import trust as _trust
    from ..spec.trust import reason

    if show and revoke:
        raise click.UsageError("--show and --revoke exclude each other")
    project = open_project(ctx)
    if revoke:
        gone = _trust.revoke(project.manifest_path)
        if as_json:
            click.echo(json.dumps({"manifest": str(project.manifest_path), "revoked": gone}))
        else:
            info(f"{'revoked' if gone else 'was not trusted'}: {project.manifest_path}")
        return
    st = _trust.status(project)
    if not show:
        path = _trust.write_record(project, st)
        st = _trust.status(project)
    if as_json:
        click.echo(json.dumps(st.as_json(), indent=2, ensure_ascii=False))
    else:
        from ..spec.secrets import redact_text

        for e in st.entries:
            why = reason(e)
            click.echo(f"  {'*' if why else ' '} {redact_text(e.show(100))}")
        if any(reason(e) for e in st.entries):
            click.echo("  (* may run code or lead outside the project)")
        if show:
            state = f"trusted ({st.how})" if st.trusted else "NOT trusted" + (
                f": changed since {st.record.get('trusted')}: " + "; ".join(st.changed)
                if st.record is not None else "")
            info(f"{project.manifest_path}: {state}; digest {st.digest}")
        else:
            nothing = "" if any(reason(e) for e in st.entries) else \
                "; nothing in it runs code or leads outside the project today"
            info(f"trusted {project.manifest_path} ({len(st.entries)} entries, "
                  f"{st.digest}){nothing}; recorded in {path}")
    if show and not st.trusted and any(reason(e) for e in st.entries):
        ctx.exit(1)  # not trusted, and something in it needs trust (TRU-007)


# -- where / config ---------------------------------------------------------------------------------
def _echo_settings(rows: list[dict]) -> None:
    for row in rows:
        click.echo(f"{row['field']:<16} {json.dumps(row['value'])}  [{row['rung']}]")


def _settings_rows(project) -> list[dict]:
    res = project.storage.resolved
    return [{"field": k, "value": v.value, "rung": v.rung} for k, v in res.settings.items()]


@command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def where(ctx: click.Context, as_json: bool) -> None:
    """Where things are: manifest, state file, config files, and each storage setting with the
    rung of the ladder that set it (SCHEMA.md RES-001)."""
    from ..config import checkout_config_path, user_config_path

    project = open_project(ctx)
    info = {
        "manifest": str(project.manifest_path), "project_root": str(project.root),
        "state_file": str(project.state_file), "host": project.storage.platform.hostname,
        "checkout_config": str(checkout_config_path(project.root)),
        "user_config": str(user_config_path()),
        "settings": _settings_rows(project),
        "symbols": {k: v for k, v in project.storage.symbols.items()},
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for k in ("manifest", "project_root", "state_file", "checkout_config", "user_config", "host"):
        exists = "" if k in ("project_root", "host") else (
            "" if Path(info[k]).exists() else "  (absent)")
        click.echo(f"{k:<16} {info[k]}{exists}")
    click.echo("")
    _echo_settings(info["settings"])


@group(invoke_without_command=True)
@click.pass_context
def config(ctx: click.Context) -> None:
    """Show or edit storage settings (this clone, the user file, or the manifest)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(config_show)


def _scope_options(f):
    f = click.option("--local", "scope", flag_value="local", default=True,
                     help="This clone: .datamanifest/config.toml (default).")(f)
    f = click.option("--global", "scope", flag_value="global",
                     help="The user configuration file.")(f)
    f = click.option("--project", "scope", flag_value="project",
                     help="The manifest's [_STORAGE] (shared with everyone; comments kept).")(f)
    f = click.option("--host", "host", metavar="GLOB",
                     help="Only on hosts matching GLOB (a _HOST section).")(f)
    return f


def _scope_path(ctx: click.Context, scope: str) -> Path:
    from ..config import checkout_config_path, discover, user_config_path

    if scope == "global":
        return user_config_path()
    given = ctx.find_root().obj.get("manifest")
    manifest = discover(given) if given is None or Path(given).is_dir() else Path(given)
    return manifest if scope == "project" else checkout_config_path(manifest.resolve().parent)


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool = False) -> None:
    """Each storage setting, its value and the rung that set it."""
    project = open_project(ctx.find_root())
    rows = _settings_rows(project)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _echo_settings(rows)


@config.command("set")
@click.argument("field")
@click.argument("values", nargs=-1, required=True)
@_scope_options
@click.option("--json", "as_json", is_flag=True, help="Print {field, file, changed} as JSON.")
@click.pass_context
def config_set(ctx: click.Context, field: str, values: tuple[str, ...], scope: str,
               host: str | None, as_json: bool) -> None:
    """Set FIELD (a storage field or a user symbol) to VALUE(s) in the chosen file."""
    from ..configedit import edit, parse_values

    path = _scope_path(ctx, scope)
    changed = _keeping_trust(ctx, scope, lambda: edit(
        path, scope, field, parse_values(field, list(values)), host=host))
    if as_json:
        click.echo(json.dumps({"field": field, "file": str(path), "scope": scope, "host": host,
                               "changed": changed}))
    info(f"{'set' if changed else 'unchanged'}: {field} in {path}")


def _keeping_trust(ctx: click.Context, scope: str, run):
    """TRU-008: an edit of the project's own documents keeps a trust that held before it."""
    if scope == "global":
        return run()
    from ..trust import keep

    manifest = _scope_path(ctx, "project")
    result, kept = keep(manifest, run)
    if kept:
        info(f"trust kept: {manifest} was trusted before this edit, and is for the "
              "edited content (TRU-008)")
    return result


@config.command("unset")
@click.argument("field")
@_scope_options
@click.option("--json", "as_json", is_flag=True, help="Print {field, file, changed} as JSON.")
@click.pass_context
def config_unset(ctx: click.Context, field: str, scope: str, host: str | None,
                 as_json: bool) -> None:
    """Remove FIELD from the chosen file."""
    from ..configedit import edit

    path = _scope_path(ctx, scope)
    changed = _keeping_trust(ctx, scope, lambda: edit(path, scope, field, host=host,
                                                          unset=True))
    if as_json:
        click.echo(json.dumps({"field": field, "file": str(path), "scope": scope, "host": host,
                               "changed": changed}))
    info(f"{'unset' if changed else 'not set'}: {field} in {path}")


COMMANDS = [trust_cmd, where, config]
