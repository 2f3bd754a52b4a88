"""scripts/run, scripts/test and scripts/bench: help installs nothing; installing prints one line.

Each test copies the scripts into a scratch tree (so ``.venv`` there starts
missing) and puts stand-ins for apt-get, dpkg-query, id and, where a venv is
wanted, its python first on PATH.  The stand-ins record every call and print
the kind of noise dpkg and pip print, which must end up in the log file only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(60)

NOISE = "Selecting previously unselected package noise-from-dpkg."


def tool(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the scripts, stand-ins in tmp_path/bin recording calls to tmp_path/calls."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("_bootstrap.sh", "run", "test", "bench", "demo-realm", "requirements.lock"):
        shutil.copy2(REPO / "scripts" / name, repo / "scripts" / name)
    shutil.copy2(REPO / "pyproject.toml", repo / "pyproject.toml")
    calls = tmp_path / "calls"
    fail = tmp_path / "fail"  # when present, apt-get fails
    tool(tmp_path / "bin" / "dpkg-query", f'echo "dpkg-query $*" >> {calls}\nexit 1\n')
    tool(
        tmp_path / "bin" / "apt-get",
        f'echo "apt-get $*" >> {calls}\necho "{NOISE}"\necho "Unpacking noise (1.0) ..."\n'
        f'[ -e {fail} ] && {{ echo "E: Unable to locate package nonesuch"; exit 100; }}\nexit 0\n',
    )
    tool(tmp_path / "bin" / "id", 'echo 0\n')
    return repo


def run(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHGATEWAY_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{tree.parent / 'bin'}:{env['PATH']}"
    env["TMPDIR"] = str(tree.parent)
    return subprocess.run(["bash", *args], cwd=tree, env=env, capture_output=True, text=True, timeout=30)


def fake_venv(tree: Path) -> None:
    """A .venv whose python installs by printing pip's noise, and whose authgateway prints a help."""
    calls = tree.parent / "calls"
    tool(
        tree / ".venv" / "bin" / "python",
        f'if [ "$1 $2" = "-m pip" ]; then echo "pip $*" >> {calls}; echo "Collecting noise-from-pip"; exit 0; fi\n'
        'exec python3 "$@"\n',
    )
    tool(tree / ".venv" / "bin" / "authgateway", 'echo "authgateway $* (the real help)"\n')


@pytest.mark.parametrize("script", ["run", "test", "bench", "demo-realm"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_installs_nothing_on_a_fresh_machine(tree: Path, script: str, flag: str) -> None:
    done = run(tree, f"scripts/{script}", flag)
    assert done.returncode == 0, done.stderr
    header = (tree / "scripts" / script).read_text().splitlines()[1]
    assert done.stdout.startswith(header.removeprefix("# ") + "\n")
    if script != "demo-realm":  # its header predates the rule; the bootstrap's generic help covers it
        assert "installs nothing" in done.stdout
    assert not (tree.parent / "calls").exists()  # neither dpkg nor apt-get was asked anything
    assert not (tree / ".venv").exists()


def test_run_help_shows_the_commands_own_help_once_there_is_a_venv(tree: Path) -> None:
    fake_venv(tree)
    done = run(tree, "scripts/run", "--port", "15000", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n\nauthgateway serve --help (the real help)\n")
    assert not (tree.parent / "calls").exists()


def test_an_install_prints_one_summary_line_and_keeps_the_noise_in_a_log(tree: Path) -> None:
    fake_venv(tree)
    done = run(tree, "-c", 'source scripts/_bootstrap.sh; ensure_apt curl gcc; ensure_venv test; install_summary')
    assert done.returncode == 0, done.stderr
    assert NOISE not in done.stderr + done.stdout and "noise-from-pip" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert lines[:2] == [
        "[authgateway] installing Debian packages: curl gcc",
        f"[authgateway] installing the project and its dependencies (test) into {tree}/.venv",
    ]
    assert re.fullmatch(
        rf"\[authgateway\] installed Debian packages curl gcc and the project with test in \d+ s "
        rf"\(output: {re.escape(str(tree))}/\.venv/install\.log\)",
        lines[2],
    ), lines[2]
    assert len(lines) == 3
    log = (tree / ".venv" / "install.log").read_text()
    assert NOISE in log and "Collecting noise-from-pip" in log
    calls = (tree.parent / "calls").read_text().splitlines()
    assert calls[-3:-1] == ["apt-get update", "apt-get install -y --no-install-recommends curl gcc"]
    assert calls[-1].startswith("pip -m pip install ")

    again = run(tree, "-c", 'source scripts/_bootstrap.sh; ensure_venv test; install_summary')
    assert again.returncode == 0, again.stderr
    assert re.fullmatch(r"\[authgateway\] nothing to install \(\d+ s\)\n", again.stderr), again.stderr


def test_a_failed_install_shows_the_end_of_its_log(tree: Path) -> None:
    (tree.parent / "fail").touch()
    done = run(tree, "-c", "set -e; source scripts/_bootstrap.sh; ensure_apt curl; echo not reached")
    assert done.returncode != 0
    assert "not reached" not in done.stdout
    lines = done.stderr.splitlines()
    assert lines[0] == "[authgateway] installing Debian packages: curl"
    assert re.fullmatch(
        rf"\[authgateway\] apt-get update failed; the last lines of {re.escape(str(tree.parent))}/"
        r"authgateway-install\.\w+\.log:",
        lines[1],
    ), lines[1]
    assert lines[-3:] == [f"    {NOISE}", "    Unpacking noise (1.0) ...", "    E: Unable to locate package nonesuch"]
