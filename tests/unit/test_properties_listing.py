"""Properties of a directory read a batch at a time (:meth:`HostTree.next_names`).

Whatever the names (any Unicode a file name may hold, invalid UTF-8 among
them) and whatever the batch size, walking the batches with each one's last
name as the next ``after`` gives every visible name exactly once, in the
order of their UTF-8 bytes (HDFS's), and each batch's count of what follows
is exact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.embedded.store._host import HostTree

PROPERTY = settings(derandomize=True, deadline=None, max_examples=60)

names = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="/\x00"), min_size=1, max_size=12
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 255)


@PROPERTY
@given(
    st.sets(names, max_size=40),
    st.integers(min_value=1, max_value=12),
    st.sets(st.binary(min_size=1, max_size=4).filter(lambda b: b"/" not in b and b"\0" not in b), max_size=3),
)
def test_batches_give_every_name_once_in_byte_order(wanted: set[str], count: int, raw: set[bytes]) -> None:
    with tempfile.TemporaryDirectory() as top:
        for name in wanted:
            (Path(top) / name).touch()
        for name in raw:  # names that may not be UTF-8: invisible when they are not
            try:
                os.close(os.open(os.path.join(os.fsencode(top), b"x" + name), os.O_CREAT | os.O_WRONLY))
            except FileExistsError:
                pass
        visible = {n for n in os.listdir(top) if _utf8(n)}
        tree = HostTree(Path(top))
        try:
            seen: list[str] = []
            after = ""
            while True:
                batch, rest = tree.next_names((), after, count, None, None)
                assert len(batch) <= count
                seen += batch
                assert rest == len(visible) - len(seen)
                if not rest:
                    break
                after = batch[-1]
        finally:
            tree.close()
    assert seen == sorted(visible, key=lambda n: n.encode("utf-8"))


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
