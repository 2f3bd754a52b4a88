"""Which face of the embedded backend answers a raw request path."""

from __future__ import annotations

import pytest

from gateway.embedded.faces import face_for
from gateway.embedded.faces import alluxio, hoop, webhdfs

FACES = (hoop.FACE, webhdfs.FACE, alluxio.FACE)


@pytest.mark.parametrize(
    ("raw_path", "name"),
    [
        ("/", "hoop"),
        ("/user/bob?op=list", "hoop"),
        ("/webhdfs/v1", "webhdfs"),
        ("/webhdfs/v1?op=GETHOMEDIRECTORY", "webhdfs"),
        ("/webhdfs/v1/", "webhdfs"),
        ("/webhdfs/v1/user/bob?op=LISTSTATUS", "webhdfs"),
        ("/webhdfs/v1x/a", "hoop"),
        ("/webhdfs/v2/a", "hoop"),
        ("/webhdfs", "hoop"),
        ("/a/webhdfs/v1/b", "hoop"),
        ("/WEBHDFS/v1/a", "hoop"),  # the prefix is case-sensitive, as Hadoop's servlet mapping
        ("/api/v1/paths//a/exists", "alluxio"),
        ("/api/v1/streams/7/read", "alluxio"),
        ("/api/v1", "alluxio"),
        ("/api/v10/x", "hoop"),
    ],
)
def test_face_for(raw_path: str, name: str) -> None:
    assert face_for(FACES, raw_path).name == name
    assert face_for(tuple(reversed(FACES)), raw_path).name == name  # longest prefix, whatever the order


def test_no_face_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        face_for((webhdfs.FACE,), "/user")
