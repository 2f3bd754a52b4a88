"""Build the Go client programs under ``tests/clients/`` once per test session.

The build is offline and touches nothing outside a temporary directory: Go
in GOPATH mode (``GO111MODULE=off``, ``GOFLAGS`` empty, ``GOENV=off``), a
GOPATH and GOCACHE of its own, the vendored ``alluxio-go`` copied in as
``github.com/Alluxio/alluxio-go``, and go-spnego with gokrb5 from Debian's
``/usr/share/gocode`` (``golang-github-dpotapov-go-spnego-dev``).  cgo is off,
so no C compiler is needed and the programs resolve names in pure Go.

Under ``CI=true`` a missing Go toolchain or library fails the tests that need
it; elsewhere they are skipped with the reason.  A program that does not
compile always fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ("build_go_program",)

CLIENTS = Path(__file__).resolve().parent
DEBIAN_GOCODE = Path("/usr/share/gocode")
# Import path -> the vendored copy (see its README).
VENDORED = {"github.com/Alluxio/alluxio-go": CLIENTS / "alluxio-go"}
# Import paths the Debian packages must provide.
FROM_DEBIAN = ("github.com/dpotapov/go-spnego", "gopkg.in/jcmturner/gokrb5.v5")
INSTALL_HINT = "apt-get install golang-go golang-github-dpotapov-go-spnego-dev"

_built: dict[str, Path] = {}


def go_unavailable(reason: str) -> NoReturn:
    """Fail under CI (Go must be there), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Go client build unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"Go client build unavailable: {reason}")


def build_go_program(tmp_path_factory: pytest.TempPathFactory, program: str) -> Path:
    """The executable built from ``tests/clients/<program>``, built on first use in this session."""
    if program in _built:
        return _built[program]
    go = shutil.which("go")
    if go is None:
        go_unavailable(f"no go on PATH ({INSTALL_HINT})")
    missing = [path for path in FROM_DEBIAN if not (DEBIAN_GOCODE / "src" / path).is_dir()]
    if missing:
        go_unavailable(f"not in {DEBIAN_GOCODE}: {', '.join(missing)} ({INSTALL_HINT})")

    base = tmp_path_factory.mktemp(f"go-{program}")
    gopath = base / "gopath"
    for import_path, source in VENDORED.items():
        shutil.copytree(source, gopath / "src" / import_path)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GO", "CGO_"))}
    env.update(
        GO111MODULE="off",
        GOFLAGS="",
        GOENV="off",
        GOPATH=os.pathsep.join([str(gopath), str(DEBIAN_GOCODE)]),
        GOCACHE=str(base / "cache"),
        GOTMPDIR=str(base),
        CGO_ENABLED="0",
        HOME=str(base),
    )
    executable = base / program
    try:
        proc = subprocess.run(
            [go, "build", "-o", str(executable), "."],
            cwd=CLIENTS / program, env=env, capture_output=True, text=True, timeout=300, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"go build of {program} took longer than {exc.timeout}s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"go build of {program} failed ({proc.returncode}):\n{proc.stderr}", pytrace=False)
    _built[program] = executable
    return executable
