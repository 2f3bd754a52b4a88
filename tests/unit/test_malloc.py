"""The allocator settings for streaming: pieces of a stream stop costing page faults.

Each case runs in its own interpreter: mallopt changes a process for good.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")

# Moves 500 pieces as a stream does (a read, then the parser's copy of it),
# after a warm-up, and prints the page faults that took.
_CHURN = """
import resource, sys
size = int(sys.argv[2])
if sys.argv[1] == "tuned":
    from gateway._malloc import keep_heap_for_streams
    assert keep_heap_for_streams()
def churn():
    for _ in range(500):
        read = b"x" * size
        parsed = read[1:]
        del read, parsed
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


# A socket read (uvloop reads up to 256 KiB), and an embedded backend's file read.
_SIZES = pytest.mark.parametrize("size", [256 << 10, 1 << 20])


def _faults(mode: str, size: int) -> int:
    out = subprocess.run([sys.executable, "-c", _CHURN, mode, str(size)], check=True, capture_output=True, text=True)
    return int(out.stdout)


@_SIZES
def test_default_glibc_faults_in_every_piece(size: int) -> None:
    # Why the settings exist: without them each piece is memory mapped anew.
    assert _faults("default", size) >= 500


@_SIZES
def test_tuned_pieces_reuse_the_heap(size: int) -> None:
    assert _faults("tuned", size) < 50
