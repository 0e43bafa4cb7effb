"""A node's TLS files in its data dir: ``certificates/{node.crt,node.key,ca.crt}`` (keys 0600).

Managers and agents (and the CLI, for the admin certificate) read and write the same layout, so it
lives in the core layer. Writes go to a temporary file renamed into place, so a reader never sees a
half-written certificate; a renewed certificate replaces the old one the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@dataclass(frozen=True)
class CertFiles:
    """Where one identity's certificate, key and CA live (``name`` is node or admin)."""

    dir: Path
    name: str = "node"

    @property
    def cert(self) -> Path:
        return self.dir / f"{self.name}.crt"

    @property
    def key(self) -> Path:
        return self.dir / f"{self.name}.key"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def exists(self) -> bool:
        return self.cert.exists() and self.key.exists() and self.ca.exists()

    def load(self) -> tuple[bytes, bytes, bytes]:
        """(cert, key, ca) PEMs."""
        return self.cert.read_bytes(), self.key.read_bytes(), self.ca.read_bytes()

    def save(self, cert: bytes, key: bytes, ca: bytes) -> None:
        write_private(self.key, key)
        write_private(self.ca, ca)
        write_private(self.cert, cert)  # last: its mtime says the set changed

    def mtime(self) -> float:
        try:
            return self.cert.stat().st_mtime
        except FileNotFoundError:
            return 0.0
