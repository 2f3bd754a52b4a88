"""Properties of the Alluxio face's options body (:class:`Options`): any body is accepted or refused, never more.

Whatever the bytes, :meth:`Options.parse` either refuses them with
``BadRequestError`` (the face's ``INVALID_ARGUMENT``) or returns options
whose every accessor answers without raising: the shape is checked once,
whole, so no action can meet a value of the wrong type later.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.embedded.faces.alluxio import Options
from gateway.embedded.store import BadRequestError

PROPERTY = settings(derandomize=True, deadline=None, max_examples=300)

KEYS = ["recursive", "allowExists", "blockSizeBytes", "mode", "owner", "group", "ownerBits", "groupBits",
        "otherBits", "writeType"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
    st.sampled_from(["ALL", "NONE", "READ", "a b", "x/y", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=20,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=6).map(lambda d: json.dumps(d).encode()),
    values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


def read_all(options: Options) -> tuple[Any, ...]:
    return (
        options.flag("recursive", False), options.flag("allowExists", True), options.block_size(),
        options.name("owner"), options.name("group"), options.mode(),
    )


@PROPERTY
@given(bodies)
@example(b"[" * 50_000)
@example(b'{"mode":{"ownerBits":[]}}')
@example(b'{"mode":{"groupBits":{}}}')
@example(b'{"blockSizeBytes":' + b"9" * 5000 + b"}")
def test_any_body_is_accepted_whole_or_refused(body: bytes) -> None:
    try:
        options = Options.parse(body)
    except BadRequestError as exc:
        assert len(exc.message) < 200
        return
    flags, allow, block_size, owner, group, mode = read_all(options)
    assert isinstance(flags, bool) and isinstance(allow, bool)
    assert block_size == -1 or block_size > 0
    assert owner is None or (isinstance(owner, str) and "/" not in owner and " " not in owner)
    assert group is None or isinstance(group, str)
    assert mode is None or 0 <= mode <= 0o777
