"""Cross-site request forgery, through a real gateway (gateway.csrf).

A page a user opens can make the browser POST a form to the gateway with the
user's cookie or Negotiate answer; it cannot add a header.  A browser's
request that changes something must carry ``X-XSRF-HEADER``; every other
client goes on as before.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest
import requests

from gateway.csrf import CSRF_MESSAGE
from gateway.wire import Fault, WireFormat, error_response
from tests.conftest import GatewayProcess

pytestmark = pytest.mark.timeout(120)

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
OPERA = "Opera/9.80 (X11; Linux x86_64) Presto/2.12.388 Version/12.16"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what <form method=POST> sends
MESSAGE = f"{CSRF_MESSAGE}: a browser must send the X-XSRF-HEADER header with this method"


def expected(fmt: WireFormat, message: str = MESSAGE) -> tuple[int, object]:
    response = error_response(fmt, Fault.BAD_REQUEST, message)
    assert isinstance(response.body, bytes)
    return response.status, json.loads(response.body)


@pytest.fixture
def gw(gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    gw = gateway()
    for path in ("/user/alice/keep.txt", "/user/alice/hoop.txt", "/user/alice/alluxio.txt"):
        r = requests.put(f"{gw.url}/webhdfs/v1{path}", params={"op": "CREATE", "user.name": "alice"},
                         data=b"precious", timeout=10)
        assert r.status_code == 201, r.text
    return gw


def content(gw: GatewayProcess, path: str) -> bytes:
    return (gw.root / path.lstrip("/")).read_bytes()


# The forged requests the issue names, one per face, each as a browser sends a form.
FORGED = [
    pytest.param("/webhdfs/v1/user/alice/keep.txt?op=TRUNCATE&newlength=0", WireFormat.WEBHDFS,
                 "/user/alice/keep.txt", id="webhdfs-truncate"),
    pytest.param("/user/alice/hoop.txt?op=append", WireFormat.HOOP, "/user/alice/hoop.txt", id="hoop-append"),
    pytest.param("/api/v1/paths/user/alice/alluxio.txt/delete", WireFormat.ALLUXIO, "/user/alice/alluxio.txt",
                 id="alluxio-delete"),
]


@pytest.mark.parametrize(("target", "fmt", "path"), FORGED)
@pytest.mark.parametrize("agent", [FIREFOX, CHROME, OPERA])
def test_a_browsers_form_post_is_refused_in_the_routes_format_before_authentication(
    gw: GatewayProcess, target: str, fmt: WireFormat, path: str, agent: str
) -> None:
    sep = "&" if "?" in target else "?"
    r = requests.post(f"{gw.url}{target}{sep}user.name=alice", headers={**FORM, "User-Agent": agent},
                      data=b"x=1", timeout=10)
    assert (r.status_code, r.json()) == expected(fmt), r.text
    assert "Set-Cookie" not in r.headers  # refused before the filter: no session was made
    assert content(gw, path) == b"precious"
    # The same request with no credentials at all: still the 400, never a 401 challenge
    # (a browser would answer Negotiate on its own).
    r = requests.post(f"{gw.url}{target}", headers={**FORM, "User-Agent": agent}, data=b"x=1", timeout=10)
    assert (r.status_code, r.json()) == expected(fmt), r.text
    assert "WWW-Authenticate" not in r.headers
    assert refused_in_access_log(gw, expected(fmt)[0])


def refused_in_access_log(gw: GatewayProcess, status: int) -> bool:
    deadline = time.monotonic() + 5
    while True:  # the line is written after the answer
        lines = [line[line.index("{"):] for line in gw.log().splitlines() if "gateway.access" in line]
        if any((a := json.loads(line)).get("refused") == "csrf" and a["status"] == status for line in lines):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_a_session_cookie_does_not_make_a_forged_request_pass(gw: GatewayProcess) -> None:
    with requests.Session() as browser:
        browser.headers["User-Agent"] = FIREFOX
        r = browser.get(f"{gw.url}/webhdfs/v1/user/alice/keep.txt", params={"op": "GETFILESTATUS", "user.name": "alice"},
                        timeout=10)
        assert r.status_code == 200 and browser.cookies.get("hadoop.auth"), r.text  # a browser's GET goes on
        r = browser.post(f"{gw.url}/webhdfs/v1/user/alice/keep.txt?op=TRUNCATE&newlength=0", headers=FORM,
                         data=b"", timeout=10)
        assert (r.status_code, r.json()) == expected(WireFormat.WEBHDFS)
        assert content(gw, "/user/alice/keep.txt") == b"precious"
        # With the header (which no other origin's page can add), the same browser session may.
        r = browser.post(f"{gw.url}/webhdfs/v1/user/alice/keep.txt?op=TRUNCATE&newlength=0",
                         headers={"X-XSRF-HEADER": ""}, timeout=10)
        assert r.status_code == 200, r.text
        assert content(gw, "/user/alice/keep.txt") == b""


@pytest.mark.parametrize(
    "agent",
    [
        None,  # no User-Agent at all
        "curl/8.5.0",
        "python-requests/2.32.3",  # HdfsCLI, fsspec's webhdfs, alluxio 0.1.4
        "Python/3.11 aiohttp/3.10.5",
        "Go-http-client/1.1",  # the Go seed program, the Alluxio Go client
        "Java/17.0.12",  # Hadoop's WebHdfsFileSystem without dfs.webhdfs.rest-csrf.enabled
        "Wget/1.21.4",
    ],
)
def test_clients_that_are_not_browsers_never_need_the_header(gw: GatewayProcess, agent: str | None) -> None:
    headers = {"User-Agent": agent} if agent is not None else {}
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        # Raw, so that no client library adds a User-Agent of its own.
        lines = ["POST /webhdfs/v1/user/alice/keep.txt?op=TRUNCATE&newlength=3&user.name=alice HTTP/1.1",
                 f"Host: localhost:{gw.port}", "Content-Length: 0", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert content(gw, "/user/alice/keep.txt") == b"pre"


def test_hadoops_client_with_rest_csrf_enabled_sends_the_header_and_goes_on(gw: GatewayProcess) -> None:
    # WebHdfsFileSystem sends the header empty on every method it does not ignore;
    # a browser user agent then passes too.
    r = requests.post(f"{gw.url}/webhdfs/v1/user/alice/keep.txt",
                      params={"op": "TRUNCATE", "newlength": "0", "user.name": "alice"},
                      headers={"User-Agent": FIREFOX, "X-XSRF-HEADER": ""}, timeout=10)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_methods_a_page_can_send_anyway_are_not_checked(gw: GatewayProcess, method: str) -> None:
    r = requests.request(method, f"{gw.url}/webhdfs/v1/user/alice/keep.txt",
                         params={"op": "GETFILESTATUS", "user.name": "alice"}, headers={"User-Agent": FIREFOX},
                         timeout=10)
    if method == "OPTIONS":  # the backend's own answer: WebHDFS has no OPTIONS
        assert CSRF_MESSAGE not in r.text and "UnsupportedOperationException" in r.text, r.text
    else:
        assert r.status_code == 200, r.text


def test_put_and_delete_from_a_browser_need_the_header_too(gw: GatewayProcess) -> None:
    url = f"{gw.url}/webhdfs/v1/user/alice/keep.txt"
    for method, op in (("PUT", "SETPERMISSION"), ("DELETE", "DELETE")):
        r = requests.request(method, url, params={"op": op, "permission": "777", "user.name": "alice"},
                             headers={"User-Agent": CHROME}, timeout=10)
        assert (r.status_code, r.json()) == expected(WireFormat.WEBHDFS), r.text
    assert content(gw, "/user/alice/keep.txt") == b"precious"


def test_no_cors_answer_lets_another_origin_send_the_header(gw: GatewayProcess) -> None:
    # The preflight a page's fetch() with X-XSRF-HEADER needs: a browser sends it without credentials.
    preflight = requests.options(
        f"{gw.url}/webhdfs/v1/user/alice/keep.txt?op=TRUNCATE&newlength=0",
        headers={"User-Agent": CHROME, "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-xsrf-header"},
        timeout=10,
    )
    assert not 200 <= preflight.status_code < 300, preflight.text  # a browser needs a 2xx (Fetch, CORS check)
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-")], preflight.headers
    # Nor does any ordinary answer to a cross-origin request allow anything.
    for r in (
        requests.get(f"{gw.url}/webhdfs/v1/user/alice/keep.txt", params={"op": "OPEN", "user.name": "alice"},
                     headers={"User-Agent": CHROME, "Origin": "https://evil.example"}, timeout=10),
        requests.options(f"{gw.url}/webhdfs/v1/user/alice/keep.txt", params={"user.name": "alice"},
                         headers={"User-Agent": CHROME, "Origin": "https://evil.example"}, timeout=10),
    ):
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers


def test_the_header_methods_and_browsers_are_configurable(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway(csrf={"custom_header": "X-Requested-By", "methods_to_ignore": ["GET", "HEAD", "OPTIONS", "TRACE",
                                                                               "PUT"],
                       "browser_useragents_regex": ["^Mozilla.*", "^MyBrowser/.*"]})
    url = f"{gw.url}/webhdfs/v1/user/alice/dir"
    r = requests.put(url, params={"op": "MKDIRS", "user.name": "alice"}, headers={"User-Agent": FIREFOX}, timeout=10)
    assert r.status_code == 200, r.text  # PUT is ignored here
    r = requests.delete(url, params={"op": "DELETE", "user.name": "alice"}, headers={"User-Agent": "MyBrowser/2",
                                                                                     "X-XSRF-HEADER": ""}, timeout=10)
    message = f"{CSRF_MESSAGE}: a browser must send the X-Requested-By header with this method"
    assert (r.status_code, r.json()) == expected(WireFormat.WEBHDFS, message), r.text
    r = requests.delete(url, params={"op": "DELETE", "user.name": "alice"},
                        headers={"User-Agent": "MyBrowser/2", "X-Requested-By": "x"}, timeout=10)
    assert (r.status_code, r.json()) == (200, {"boolean": True}), r.text


def test_it_can_be_turned_off(gateway: Callable[..., GatewayProcess]) -> None:
    gw = gateway(csrf={"enabled": False})
    r = requests.put(f"{gw.url}/webhdfs/v1/user/alice/dir", params={"op": "MKDIRS", "user.name": "alice"},
                     headers={"User-Agent": FIREFOX}, timeout=10)
    assert r.status_code == 200, r.text


def test_a_refused_upload_gets_no_100_continue(gw: GatewayProcess) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        head = (f"PUT /webhdfs/v1/user/alice/keep.txt?op=CREATE&overwrite=true&user.name=alice HTTP/1.1\r\n"
                f"Host: localhost:{gw.port}\r\nUser-Agent: {FIREFOX}\r\nContent-Length: 1000000\r\n"
                "Expect: 100-continue\r\n\r\n")
        sock.sendall(head.encode())
        answer = b""
        while b"}" not in answer:  # the whole (small) error document
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"\r\nConnection: close\r\n" in answer  # the body is not wanted: no second request on it
    assert content(gw, "/user/alice/keep.txt") == b"precious"
