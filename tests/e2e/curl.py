"""Run the real curl the way the seed's examples do and capture the exchange."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class CurlResult:
    status: int
    headers: dict[str, list[str]]  # lower-case names
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        assert len(values) == 1, f"{name}: {values}"
        return values[0]

    def json(self) -> Any:
        return json.loads(self.body)


def curl(*args: str, timeout: float = 60) -> CurlResult:
    """``curl -s -S ARGS``; returns status, response headers and body."""
    with tempfile.TemporaryDirectory() as tmp:
        head, body = Path(tmp) / "head", Path(tmp) / "body"
        proc = subprocess.run(
            ["curl", "-s", "-S", "-D", str(head), "-o", str(body), *args],
            capture_output=True, timeout=timeout, check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        blocks = [b for b in head.read_bytes().decode("iso-8859-1").split("\r\n\r\n") if b.strip()]
        lines = blocks[-1].split("\r\n")  # the final response (after any 100 Continue)
        status = int(lines[0].split()[1])
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return CurlResult(status, headers, body.read_bytes())
