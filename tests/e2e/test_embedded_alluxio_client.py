"""The seed's Alluxio Python example, through the real gateway to the embedded Alluxio face.

The program is the seed's (../shared/seeds/alluxio-rest-api.txt), changed only
in host and port and in pseudo authentication attached to ``client.session``;
it runs with the pinned ``alluxio`` 0.1.4 client as its own process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.timeout(120)

SEED_PROGRAM = '''\
#!/usr/bin/env python
# -*- coding: utf-8 -*-
import json
import sys
import alluxio
from alluxio import option
def colorize(code):
    def _(text, bold=False):
        c = code
        if bold:
            c = '1;%s' % c
        return '\\033[%sm%s\\033[0m' % (c, text)
    return _
green = colorize('32')
def info(s):
    print(green(s))
def pretty_json(obj):
    return json.dumps(obj, indent=2)
py_test_root_dir = '/py-test-dir'
py_test_nested_dir = '/py-test-dir/nested'
py_test = py_test_nested_dir + '/py-test'
py_test_renamed = py_test_root_dir + '/py-test-renamed'
client = alluxio.Client('localhost', PORT)
client.session.params = {'user.name': USER}
info("creating directory %s" % py_test_nested_dir)
opt = option.CreateDirectory(recursive=True)
client.create_directory(py_test_nested_dir, opt)
info("done")
info("writing to %s" % py_test)
with client.open(py_test, 'w') as f:
    f.write('Alluxio works with Python!\\n')
    with open(sys.argv[0]) as this_file:
        f.write(this_file)
info("done")
info("getting status of %s" % py_test)
stat = client.get_status(py_test)
print(pretty_json(stat.json()))
info("done")
info("renaming %s to %s" % (py_test, py_test_renamed))
client.rename(py_test, py_test_renamed)
info("done")
info("getting status of %s" % py_test_renamed)
stat = client.get_status(py_test_renamed)
print(pretty_json(stat.json()))
info("done")
info("reading %s" % py_test_renamed)
with client.open(py_test_renamed, 'r') as f:
    print(f.read())
info("done")
info("listing status of paths under /")
root_stats = client.list_status('/')
for stat in root_stats:
    print(pretty_json(stat.json()))
info("done")
info("deleting %s" % py_test_root_dir)
opt = option.Delete(recursive=True)
client.delete(py_test_root_dir, opt)
info("done")
info("asserting that %s is deleted" % py_test_root_dir)
assert not client.exists(py_test_root_dir)
info("done")
'''


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway()


def run_seed(gw: GatewayProcess, tmp_path: Path, user: str) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "seed_example.py"
    program.write_text(SEED_PROGRAM.replace("PORT", str(gw.port)).replace("USER", repr(user)))
    return subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


def test_the_seed_python_example_runs_to_its_last_done(gw: GatewayProcess, tmp_path: Path) -> None:
    result = run_seed(gw, tmp_path, "hdfs")  # it writes at the top level: the superuser's
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines[-1] == "\x1b[32mdone\x1b[0m"
    assert "Alluxio works with Python!" in result.stdout
    assert '"path": "/py-test-dir/py-test-renamed"' in result.stdout
    assert not (gw.root / "py-test-dir").exists()


def test_another_user_gets_alluxios_permission_error(gw: GatewayProcess, tmp_path: Path) -> None:
    result = run_seed(gw, tmp_path, "alice")
    assert result.returncode == 1
    assert "alluxio.exceptions.PermissionDeniedError" in result.stderr
    assert "Permission denied: user=alice, access=WRITE, inode=/" in result.stderr


def test_multi_mib_both_ways_and_one_namespace(gw: GatewayProcess) -> None:
    import os

    import alluxio
    import requests
    from alluxio import option

    client = alluxio.Client("localhost", gw.port)
    client.session.params = {"user.name": "bob"}
    big = os.urandom(6 * 1024 * 1024 + 11)
    client.create_directory("/user/bob/ax", option.CreateDirectory(recursive=True))
    with client.open("/user/bob/ax/big", "w") as f:
        f.write(big[: 1024 * 1024])
        f.write(big[1024 * 1024 :])
    with client.open("/user/bob/ax/big", "r") as f:
        assert f.read() == big
    # The same file through the other two faces, with the same owner and size.
    hoop = requests.get(f"{gw.url}/user/bob/ax/big?op=status&user.name=bob", timeout=30).json()
    webhdfs = requests.get(f"{gw.url}/webhdfs/v1/user/bob/ax/big?op=GETFILESTATUS&user.name=bob", timeout=30).json()
    assert (hoop["owner"], hoop["len"]) == ("bob", len(big))
    assert (webhdfs["FileStatus"]["owner"], webhdfs["FileStatus"]["length"]) == ("bob", len(big))
    assert client.get_status("/user/bob/ax/big").mode == 0o644
