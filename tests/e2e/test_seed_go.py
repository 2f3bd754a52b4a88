"""The seed's Go example (alluxio-go), through the real gateway to the embedded Alluxio face.

The program is the seed's (../shared/seeds/alluxio-rest-api.txt), changed
only in host and port (``tests/clients/seed-go/main.go``); pseudo
authentication is attached from outside it (``auth.go``: ``SEED_AUTH=simple``
adds ``user.name=$HADOOP_USER_NAME`` to every request).  It is built once per
session with the vendored alluxio-go (``tests/clients/gobuild.py``) and runs as
its own process.

The seed writes ``/test_path`` at the top level, which only the superuser
``hdfs`` may do in the embedded store, so it runs as ``hdfs`` (as the Python
seed test does); ``alice`` gets Alluxio's permission error.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.clients.gobuild import build_go_program
from tests.conftest import GatewayProcess
from tests.e2e.curl import CurlResult, curl
from tests.e2e.test_observe import logged_access_lines

pytestmark = pytest.mark.timeout(120)

@pytest.fixture(scope="session")
def seed_go(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go_program(tmp_path_factory, "seed-go")


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway()


def run_seed_go(
    program: Path, gw: GatewayProcess, auth: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("SEED_AUTH", "HADOOP_USER_NAME")}
    env.update(auth)
    return subprocess.run(
        [str(program), "localhost", str(gw.port)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )


def as_user(user: str) -> dict[str, str]:
    return {"SEED_AUTH": "simple", "HADOOP_USER_NAME": user}


def assert_success(result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stdout) == (0, "Result: Success\n"), result.stderr


def test_the_seed_go_example_prints_success(seed_go: Path, gw: GatewayProcess, tmp_path: Path) -> None:
    assert_success(run_seed_go(seed_go, gw, as_user("hdfs"), tmp_path))
    assert (gw.root / "test_path").read_bytes() == b"Success"
    # The same file through the Hoop and WebHDFS faces, as another user.
    hoop = curl(f"{gw.url}/test_path?op=status&user.name=alice").json()
    webhdfs = curl(f"{gw.url}/webhdfs/v1/test_path?op=GETFILESTATUS&user.name=alice").json()["FileStatus"]
    assert (hoop["owner"], hoop["len"], hoop["isDir"]) == ("hdfs", 7, False)
    assert (webhdfs["owner"], webhdfs["length"], webhdfs["type"]) == ("hdfs", 7, "FILE")
    assert curl(f"{gw.url}/webhdfs/v1/test_path?op=OPEN&user.name=alice").body == b"Success"


def test_the_second_run_deletes_what_the_first_wrote(seed_go: Path, gw: GatewayProcess, tmp_path: Path) -> None:
    assert_success(run_seed_go(seed_go, gw, as_user("hdfs"), tmp_path))
    assert_success(run_seed_go(seed_go, gw, as_user("hdfs"), tmp_path))
    deletes = [
        line for line in logged_access_lines(gw)
        if (line["method"], line["path"], line["query"], line["status"])
        == ("POST", "/api/v1/paths//test_path/delete", "user.name=hdfs", 200)
    ]
    assert len(deletes) == 1
    assert (gw.root / "test_path").read_bytes() == b"Success"


def test_a_user_who_may_not_write_at_the_top_gets_alluxios_error(
    seed_go: Path, gw: GatewayProcess, tmp_path: Path
) -> None:
    result = run_seed_go(seed_go, gw, as_user("alice"), tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    # log.Fatal of check()'s error: the status and Alluxio's error JSON, not a decode failure.
    assert "Response status: 500 Internal Server Error (500)" in result.stderr, result.stderr
    assert (
        '{"statusCode": "PERMISSION_DENIED", "message": "Permission denied: user=alice, access=WRITE, inode=/"}'
        in result.stderr
    )
    assert "Decode() failed" not in result.stderr and "Unsupported response type" not in result.stderr
    assert not (gw.root / "test_path").exists()


def test_without_authentication_the_gateway_answers_in_alluxios_format(
    seed_go: Path, gw: GatewayProcess, tmp_path: Path
) -> None:
    result = run_seed_go(seed_go, gw, {}, tmp_path)
    assert result.returncode == 1
    assert "Response status: 401 Unauthorized (401)" in result.stderr, result.stderr
    assert '{"statusCode": "UNAUTHENTICATED", "message": "Authentication required"}' in result.stderr


def alluxio_answers(gw: GatewayProcess) -> dict[str, CurlResult]:
    """The answers to every call of alluxio-go that decodes a JSON result, made with curl as hdfs."""
    api, user = f"{gw.url}/api/v1", "user.name=hdfs"
    json_post = ("-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "{}")
    answers = {"exists": curl(*json_post, f"{api}/paths//test_path/exists?{user}")}
    answers["create-file"] = curl(*json_post, f"{api}/paths//test_path/create-file?{user}")
    stream = answers["create-file"].json()
    answers["write"] = curl(
        "-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "Success",
        f"{api}/streams/{stream}/write?{user}",
    )
    curl("-X", "POST", f"{api}/streams/{stream}/close?{user}")
    answers["open-file"] = curl(*json_post, f"{api}/paths//test_path/open-file?{user}")
    answers["get-status"] = curl(*json_post, f"{api}/paths//test_path/get-status?{user}")
    answers["list-status"] = curl(*json_post, f"{api}/paths///list-status?{user}")
    return answers


def test_the_json_answers_alluxio_go_reads_have_its_shapes(gw: GatewayProcess) -> None:
    answers = alluxio_answers(gw)
    assert {name: r.status for name, r in answers.items()} == dict.fromkeys(answers, 200)
    results = {name: r.json() for name, r in answers.items()}
    assert (results["exists"], results["write"]) == (False, 7)  # Exists: bool; Write: the bytes written
    assert isinstance(results["create-file"], int) and isinstance(results["open-file"], int)  # stream ids
    assert (results["get-status"]["path"], results["get-status"]["owner"]) == ("/test_path", "hdfs")
    assert [info["name"] for info in results["list-status"]] == ["test_path", "user"]


def test_the_json_answers_alluxio_go_reads_have_its_content_type(gw: GatewayProcess) -> None:
    """alluxio-go's process() compares the whole Content-Type with "application/json" (client.go:103)."""
    content_types = {name: r.header("Content-Type") for name, r in alluxio_answers(gw).items()}
    assert content_types == dict.fromkeys(content_types, "application/json")
