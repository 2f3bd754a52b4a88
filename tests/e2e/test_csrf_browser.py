"""A real browser (headless Chromium) on another origin's page, forging requests to the gateway.

The page auto-submits a form POST (the attack of issue 16, item 14: WebHDFS
``op=TRUNCATE&newlength=0``) and tries a fetch() that adds the CSRF header;
neither may reach the backend.  The user is authenticated the way
pseudo authentication allows (``user.name`` in the URL), which a forged
form can carry too: only the CSRF check stands in the way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.timeout(120)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def evil_origin() -> Iterator[Callable[[str], str]]:
    """Serve a page on another origin (127.0.0.2 is another host to the browser); returns the URL to put it at."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def put(html: str) -> str:
        pages["/page.html"] = html.encode()
        return f"http://127.0.0.2:{server.server_address[1]}/page.html"

    yield put
    server.shutdown()
    server.server_close()


def visit(url: str, profile: Path) -> None:
    """Chromium opens ``url`` and runs it for a few (virtual) seconds, as a user who has the page open."""
    assert CHROMIUM, "chromium is not installed (scripts/test installs it)"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
         "--virtual-time-budget=5000", "--dump-dom", url],
        check=True, capture_output=True, timeout=60,
    )


def access_lines(gw: GatewayProcess) -> list[dict[str, object]]:
    time.sleep(0.3)  # the lines are written after the answers
    return [json.loads(line[line.index("{"):]) for line in gw.log().splitlines() if "gateway.access" in line]


def test_a_pages_forged_form_post_and_fetch_do_not_reach_the_backend(
    gateway: Callable[..., GatewayProcess], evil_origin: Callable[[str], str], tmp_path: Path
) -> None:
    gw = gateway()
    r = requests.put(f"{gw.url}/webhdfs/v1/user/alice/precious.txt", params={"op": "CREATE", "user.name": "alice"},
                     data=b"precious", timeout=10)
    assert r.status_code == 201, r.text
    target = f"http://127.0.0.1:{gw.port}"
    page = evil_origin(f"""<!doctype html><html><body>
<script>
  // With the header: needs a preflight, which the gateway never grants.
  fetch("{target}/webhdfs/v1/user/alice/precious.txt?op=TRUNCATE&newlength=0&user.name=alice",
        {{method: "POST", headers: {{"X-XSRF-HEADER": "1"}}, credentials: "include"}}).catch(() => {{}});
</script>
<form id="f" method="POST" action="{target}/webhdfs/v1/user/alice/precious.txt?op=TRUNCATE&newlength=0&user.name=alice">
  <input name="x" value="1">
</form>
<script>setTimeout(() => document.getElementById("f").submit(), 500);</script>
</body></html>""")
    visit(page, tmp_path / "profile")
    assert (gw.root / "user" / "alice" / "precious.txt").read_bytes() == b"precious"
    lines = access_lines(gw)
    forged = [a for a in lines if a["op"] == "TRUNCATE"]
    # The form's POST came, from Chromium, and was refused before authentication.
    assert [(a["method"], a["status"], a.get("refused")) for a in forged if a["method"] == "POST"] == [
        ("POST", 400, "csrf")
    ], forged
    assert all(str(a["user_agent"]).startswith("Mozilla/5.0") for a in forged)
    # The fetch() never went past its preflight: one OPTIONS, answered with no 2xx and no
    # Access-Control-Allow-* (here the backend's own error: user.name rode in the URL).
    preflights = [a for a in forged if a["method"] == "OPTIONS"]
    assert len(preflights) == 1 and not 200 <= int(str(preflights[0]["status"])) < 300, forged
