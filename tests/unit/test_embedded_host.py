"""The host tree never follows a symbolic link, in or out of the root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.embedded.store._host import HostTree, is_missing


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
    tree, _root, _outside = layout
    assert [name for name, _ in tree.list_dir(())] == ["dir"]
    assert [name for name, _ in tree.list_dir(("dir",))] == ["file"]


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
