"""The host tree never follows a symbolic link, in or out of the root, and walks any depth."""

from __future__ import annotations

import errno
import os
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.embedded.store._host import FD_WINDOW, HostTree, is_missing, remove_tree_at
from tests.trees import make_deep_chain


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[HostTree, Path, Path]]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root.mkdir()
    (root / "dir").mkdir()
    (root / "dir" / "file").write_bytes(b"inside")
    (root / "out").symlink_to(outside)  # directory link out of the root
    (root / "dir" / "secret").symlink_to(outside / "secret")  # file link out of the root
    (root / "dir" / "alias").symlink_to("file")  # a link inside the root
    (root / "up").symlink_to("..")
    os.mkfifo(root / "fifo")
    tree = HostTree(root)
    try:
        yield tree, root, outside
    finally:
        tree.close()


@pytest.mark.parametrize(
    "parts",
    [("out",), ("out", "secret"), ("dir", "secret"), ("dir", "alias"), ("up",), ("up", "outside", "secret"), ("fifo",)],
)
def test_links_and_special_files_are_not_there(layout: tuple[HostTree, Path, Path], parts: tuple[str, ...]) -> None:
    tree, _root, _outside = layout
    assert tree.lstat(parts) is None


@pytest.mark.parametrize("parts", [("out", "secret"), ("dir", "secret"), ("dir", "alias"), ("up", "outside", "secret")])
def test_links_cannot_be_opened(layout: tuple[HostTree, Path, Path], parts: tuple[str, ...]) -> None:
    tree, _root, _outside = layout
    with pytest.raises(OSError) as info:
        tree.open_file(parts, os.O_RDONLY)
    assert is_missing(info.value)


def test_regular_entries_are_there(layout: tuple[HostTree, Path, Path]) -> None:
    tree, _root, _outside = layout
    st = tree.lstat(("dir", "file"))
    assert st is not None and st.st_size == 6
    fd = tree.open_file(("dir", "file"), os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"inside"
    finally:
        os.close(fd)
    assert tree.lstat(()) is not None


def test_listing_hides_links_and_special_files(layout: tuple[HostTree, Path, Path]) -> None:
    tree, root, _outside = layout
    assert tree.next_names((), "", 10, None, None) == (["dir"], 0)
    assert tree.next_names(("dir",), "", 10, None, None) == (["file"], 0)
    os.close(os.open(os.path.join(os.fsencode(root / "dir"), b"bad-\xff"), os.O_CREAT | os.O_WRONLY))
    assert tree.next_names(("dir",), "", 10, None, None) == (["file"], 0)  # not UTF-8: not there
    assert [name for name, _ in tree.stat_names(("dir",), ["file", "alias", "gone"])] == ["file"]


def test_next_names_go_in_byte_order_a_batch_at_a_time(tmp_path: Path) -> None:
    names = ["b", "a", "\u00e9", "B", "a0", "z", "\U0001f600", "_"]
    for name in names:
        (tmp_path / name).touch()
    (tmp_path / ".authgateway").mkdir()
    tree = HostTree(tmp_path)
    try:
        in_order = sorted(names, key=lambda n: n.encode("utf-8"))
        seen: list[str] = []
        after = ""
        while True:
            batch, rest = tree.next_names((), after, 3, None, ".authgateway")
            seen += batch
            assert rest == len(in_order) - len(seen)
            if not rest:
                break
            after = batch[-1]
        assert seen == in_order
        assert tree.next_names((), "", 10, lambda n: n.startswith("a"), None) == (["a", "a0"], 0)
    finally:
        tree.close()


def test_cannot_create_through_a_link(layout: tuple[HostTree, Path, Path]) -> None:
    tree, _root, outside = layout
    with pytest.raises(OSError) as info:
        tree.create_exclusive(("out", "planted"))
    assert is_missing(info.value)
    with pytest.raises(OSError):
        tree.mkdir(("out", "planted"))
    assert sorted(os.listdir(outside)) == ["secret"]


def test_remove_tree_does_not_follow_links(layout: tuple[HostTree, Path, Path]) -> None:
    tree, root, outside = layout
    (root / "dir" / "outlink").symlink_to(outside)
    tree.remove_tree(("dir",))
    assert not (root / "dir").exists()
    assert (outside / "secret").read_bytes() == b"secret"


def test_subdirectories_do_not_follow_links(layout: tuple[HostTree, Path, Path]) -> None:
    tree, root, _outside = layout
    (root / "dir" / "sub" / "deeper").mkdir(parents=True)
    assert sorted(tree.subdirectories(())) == ["dir", "dir/sub", "dir/sub/deeper"]


def test_link_refuses_to_replace(layout: tuple[HostTree, Path, Path]) -> None:
    tree, root, _outside = layout
    (root / "new").write_bytes(b"new")
    with pytest.raises(FileExistsError):
        tree.link(("new",), ("dir", "file"))
    assert (root / "dir" / "file").read_bytes() == b"inside"


@pytest.fixture
def few_descriptors() -> Iterator[None]:
    """Allow this process only FD_WINDOW + 16 descriptors more than it has open now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + FD_WINDOW + 16, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("few_descriptors")
def test_walks_of_a_tree_deeper_than_the_stack_hold_few_descriptors(tmp_path: Path) -> None:
    depth = 3 * sys.getrecursionlimit()
    make_deep_chain(tmp_path / "top", depth)
    (tmp_path / "top" / "side").mkdir()
    tree = HostTree(tmp_path)
    try:
        found = tree.subdirectories(("top",))
        assert len(found) == depth + 1 and "side" in found and max(found, key=len) == "/".join(["d"] * depth)
        in_use = len(os.listdir("/proc/self/fd"))
        tree.remove_tree(("top",))
        assert os.listdir(tmp_path) == [] and len(os.listdir("/proc/self/fd")) == in_use
    finally:
        tree.close()


@pytest.mark.usefixtures("few_descriptors")
def test_remove_tree_at_removes_a_deep_tree_and_leaves_what_links_point_at(tmp_path: Path) -> None:
    make_deep_chain(tmp_path / "top", 2 * FD_WINDOW + 5)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_bytes(b"keep")
    bottom = tmp_path.joinpath("top", *["d"] * (2 * FD_WINDOW + 5))
    (bottom / "out").symlink_to(tmp_path / "outside")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree_at(fd, "top")
        remove_tree_at(fd, "top")  # gone already: nothing to do
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["outside"] and (tmp_path / "outside" / "keep").read_bytes() == b"keep"


def test_make_chain_reports_what_it_made_before_a_failure(tmp_path: Path) -> None:
    tree = HostTree(tmp_path)
    try:
        stats, failure = tree.make_chain((), ("a", "b", "n" * 300, "c"))
        assert len(stats) == 2 and isinstance(failure, OSError) and failure.errno == errno.ENAMETOOLONG
        assert (tmp_path / "a" / "b").is_dir() and os.listdir(tmp_path / "a" / "b") == []
        stats, failure = tree.make_chain(("a",), ("b",))
        assert stats == [] and isinstance(failure, FileExistsError)
    finally:
        tree.close()
