"""Trees deeper than a path can name (PATH_MAX) or the stack can walk, made and removed by hand."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.embedded.store._host import remove_tree_at

__all__ = ("make_deep_chain", "remove_all")


def make_deep_chain(top: Path, depth: int) -> None:
    """``top/d/d/...``, ``depth`` directories deep, with a file ``f`` at the bottom."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)


def remove_all(directory: Path) -> None:
    """Empty ``directory`` whatever its depth (pytest's own clean-up recurses, and gives up on deep trees)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in os.listdir(fd):
            remove_tree_at(fd, name)
    finally:
        os.close(fd)
