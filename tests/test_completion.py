"""Shell completion (click's mechanism): dataset names and aliases after fetch, path, show,
rm and verify, driven through click's completion protocol in real processes and through the
real shells with the generated scripts: bash, an interactive zsh (through zsh's zpty module)
and fish (`complete -C`); `make system-deps` installs zsh and fish."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli, write_manifest

BODY = """
[era5]
uri = "https://h.example.org/era5.nc"
aliases = ["reanalysis", "ecmwf-era5"]
description = "ERA5 monthly means"

[elevation]
uri = "https://h.example.org/dem.tif"
doi = "10.5281/zenodo.1234"

[grid]
uri = "https://h.example.org/grid.nc"
"""


def _complete(project: Path, shell: str, words: str, cword: int | None = None,
              env: dict | None = None) -> list[str]:
    parts = words.split(" ")
    # bash and zsh pass the index of the word being completed; fish passes the word itself
    where = parts[-1] if shell == "fish" else str(len(parts) - 1 if cword is None else cword)
    full = {"_DATAMANIFEST_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
            "COMP_CWORD": where, **(env or {})}
    r = run_cli(cwd=project, env=full)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return [line for line in r.stdout.splitlines() if line]


@pytest.mark.parametrize("command", ["fetch", "path", "show", "rm", "verify", "status",
                                     "graph", "list", "mv"])
@pytest.mark.covers("INT-040")
def test_dataset_names_and_aliases_complete_after_each_command(project: Path, command: str):
    write_manifest(project, BODY)
    out = _complete(project, "bash", f"datamanifest {command} e")
    assert out == ["plain,era5", "plain,ecmwf-era5", "plain,elevation"]
    assert _complete(project, "bash", f"datamanifest {command} rea") == ["plain,reanalysis"]
    assert _complete(project, "bash", f"datamanifest {command} 10.") == [
        "plain,10.5281/zenodo.1234"]
    assert _complete(project, "bash", f"datamanifest {command} x") == []


def test_a_name_given_already_is_not_offered_again(project: Path):
    write_manifest(project, BODY)
    assert _complete(project, "bash", "datamanifest fetch era5 e") == [
        "plain,ecmwf-era5", "plain,elevation"]


def test_zsh_and_fish_get_the_descriptions(project: Path):
    write_manifest(project, BODY)
    zsh = _complete(project, "zsh", "datamanifest path e")
    assert zsh[:3] == ["plain", "era5", "ERA5 monthly means"]
    assert ["plain", "ecmwf-era5", "alias of era5"] == zsh[3:6]
    assert ["plain", "elevation", "_"] == zsh[6:9]  # no description
    fish = _complete(project, "fish", "datamanifest show e")
    assert fish == ["plain,era5\tERA5 monthly means", "plain,ecmwf-era5\talias of era5",
                    "plain,elevation"]


def test_the_manifest_option_and_environment_are_followed(project: Path, tmp_path: Path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "data.toml").write_text('[_META]\nschema = 1\n[soil]\nuri = "https://h.e/s"\n')
    assert _complete(project, "bash", f"datamanifest -m {other / 'data.toml'} fetch s") == [
        "plain,soil"]
    assert _complete(project, "bash", "datamanifest fetch s",
                     env={"DATAMANIFEST_TOML": str(other / "data.toml")}) == ["plain,soil"]


@pytest.mark.covers("INT-040")
def test_no_manifest_or_a_broken_one_completes_nothing_quietly(project: Path):
    assert _complete(project, "bash", "datamanifest fetch e") == []
    (project / "datamanifest.toml").write_text("[era5\n")
    assert _complete(project, "bash", "datamanifest fetch e") == []


def test_subcommands_and_options_still_complete(project: Path):
    write_manifest(project, BODY)
    assert "plain,graph" in _complete(project, "bash", "datamanifest gr")
    assert "plain,--mermaid" in _complete(project, "bash", "datamanifest graph --m")


def _wrapper(tmp_path: Path) -> Path:
    """A `datamanifest` on PATH that runs this checkout's package, as the installed script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "datamanifest"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m datamanifest "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_real_bash_completes_with_the_generated_script(project: Path, tmp_path: Path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    write_manifest(project, BODY)
    bin_dir = _wrapper(tmp_path)
    script = run_cli("completion", "bash").stdout
    assert "_datamanifest_completion" in script
    (tmp_path / "complete.bash").write_text(script)
    check = subprocess.run([bash, "-n", str(tmp_path / "complete.bash")], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    driver = f"""
        source {tmp_path / 'complete.bash'}
        COMP_WORDS=(datamanifest verify re)
        COMP_CWORD=2
        _datamanifest_completion datamanifest re verify
        printf '%s\\n' "${{COMPREPLY[@]}}"
        complete -p datamanifest
    """
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DATAMANIFEST_TOML", None)
    r = subprocess.run([bash, "--norc", "--noprofile", "-c", driver], cwd=project, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "reanalysis"
    assert lines[1].startswith("complete ") and lines[1].endswith(" datamanifest")


@pytest.mark.parametrize("shell,check", [("zsh", ["-n"]), ("fish", ["--no-execute"])])
def test_zsh_and_fish_scripts(tmp_path: Path, shell: str, check: list[str]):
    r = run_cli("completion", shell)
    assert r.returncode == 0
    assert "_DATAMANIFEST_COMPLETE" in r.stdout and f"{shell}_complete" in r.stdout
    exe = shutil.which(shell)
    if exe is None:
        return  # the script's text is checked above; its syntax needs the shell
    (tmp_path / "script").write_text(r.stdout)
    syntax = subprocess.run([exe, *check, str(tmp_path / "script")], capture_output=True,
                            text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_completion_rejects_an_unknown_shell():
    r = run_cli("completion", "tcsh")
    assert r.returncode == 2 and "tcsh" in r.stderr


def _shell(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing (make system-deps installs it as root)")
        pytest.skip(f"{name} is missing (make system-deps installs it as root)")
    return exe


#: a unique completion per command (a name, an alias, a doi): the shell inserts it whole
_UNIQUE = [("fetch", "rea", "reanalysis"), ("path", "elev", "elevation"),
           ("show", "10.", "10.5281/zenodo.1234"), ("rm", "gr", "grid"),
           ("verify", "ecm", "ecmwf-era5")]


def _zsh_session(zsh: str, project: Path, tmp_path: Path, setup: str) -> list[str]:
    """The command lines an interactive zsh (driven through its own zpty module) shows
    after TAB completion of each of _UNIQUE, typed one after the other in one session.

    A widget bound to ^T runs zsh's own complete-word (what TAB runs) and records the
    buffer: a key pressed while completion runs its command would be discarded, so each
    line is typed only once the one before it is recorded."""
    out = tmp_path / "buffers"
    widget = (f'complete-and-record() {{ zle complete-word; print -r -- "[$BUFFER]" >> {out}; '
              'zle kill-whole-line; }; zle -N complete-and-record; bindkey "^T" '
              'complete-and-record')
    words = " ".join(f"'{c} {w}'" for c, w, _ in _UNIQUE)
    driver = f"""
        zmodload zsh/zpty
        zpty z 'zsh -f -i'
        zpty -w z 'PS1=""; {setup}'
        zpty -w z '{widget}'
        n=0
        for words in {words}; do
            zpty -w -n z "datamanifest $words"$'\\x14'
            (( n++ ))
            for i in {{1..600}}; do
                [[ -f {out} && $(wc -l < {out}) -ge $n ]] && break
                sleep 0.1
            done
        done
        zpty -d z
    """
    env = {**os.environ, "PATH": f"{_wrapper(tmp_path)}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DATAMANIFEST_TOML", None)
    r = subprocess.run([zsh, "-f", "-c", driver], cwd=project, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return out.read_text().splitlines() if out.exists() else []


@pytest.mark.covers("INT-040")
@pytest.mark.parametrize("install", ["fpath", "source"])
def test_real_zsh_completes_every_time(project: Path, tmp_path: Path, install: str):
    """zsh with the script installed as the README says (`_datamanifest` in a folder of
    `$fpath`, then compinit) or sourced: each TAB after each command inserts the one dataset
    identifier that begins with the word (click's own zsh script, autoloaded, left the
    second TAB of a session empty)."""
    zsh = _shell("zsh")
    write_manifest(project, BODY)
    functions = tmp_path / "zfunc"
    functions.mkdir()
    script = functions / "_datamanifest"
    script.write_text(run_cli("completion", "zsh").stdout)
    setup = "autoload -U compinit; compinit -u -D"
    setup = (f"fpath=({functions} $fpath); {setup}" if install == "fpath"
             else f"{setup}; source {script}")
    assert _zsh_session(zsh, project, tmp_path, setup) == [
        f"[datamanifest {c} {full} ]" for c, _, full in _UNIQUE]


@pytest.mark.covers("INT-040")
def test_real_fish_completes_with_the_generated_script(project: Path, tmp_path: Path):
    fish = _shell("fish")
    write_manifest(project, BODY)
    bin_dir = _wrapper(tmp_path)
    (tmp_path / "datamanifest.fish").write_text(run_cli("completion", "fish").stdout)
    queries = "".join(f"complete -C 'datamanifest {c} {w}'; echo ---\n"
                      for c, w in (("fetch", "e"), *((c, w) for c, w, _ in _UNIQUE[1:])))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DATAMANIFEST_TOML", None)
    r = subprocess.run([fish, "--no-config", "-c",
                        f"source {tmp_path / 'datamanifest.fish'}\n{queries}"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    answers = [block.strip().splitlines() for block in r.stdout.split("---")[:-1]]
    assert answers[0] == ["ecmwf-era5\talias of era5", "elevation", "era5\tERA5 monthly means"]
    assert answers[1:] == [["elevation"], ["10.5281/zenodo.1234\talias of elevation"],
                           ["grid"], ["ecmwf-era5\talias of era5"]]
