"""Citizens' files, stored durably and content-addressed, outside the event store.

Events refer to a file by the sha256 of its bytes; the bytes live here. The filesystem
store writes atomically (temporary file, fsync, rename), so a crash never leaves a
half-written file under a valid name, and storing the same bytes twice is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Final

_DIGEST: Final = re.compile(r"^[0-9a-f]{64}$")

# What the office accepts: photos of papers and PDF scans. Decided from the bytes, never
# from what the sender claims.
_SIGNATURES: Final = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


def sniff_content_type(data: bytes) -> str | None:
    """The real type of ``data`` among the accepted ones (WebP too), else None."""
    for magic, content_type in _SIGNATURES:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class FileMediaStore:
    """Files under ``root/ab/cd/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise ValueError("not a sha256 hex digest")
        return self._root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256 (hex)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def path(self, digest: str) -> Path:
        """Where the file with this digest is (or would be) stored."""
        return self._path(digest)

    def get(self, digest: str) -> bytes:
        return self._path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()
