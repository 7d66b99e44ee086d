"""Content-addressed blob store: blobs/<aa>/<bb>/<sha256>, written through a hashing, size-capped writer."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class BlobTooLargeError(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the {limit // (1024 * 1024)} MiB limit")
        self.limit = limit


class BlobWriter:
    """Streams bytes to a temp file in the store while hashing; `commit` moves it to its content address."""

    HEAD_BYTES = 4096

    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        self._store = store
        self._max = max_bytes
        self._hash = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self._file = os.fdopen(fd, "wb")
        self.tmp_path = Path(name)
        self.size = 0
        self.head = b""

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._max:
            self.abort()
            raise BlobTooLargeError(self._max)
        if len(self.head) < self.HEAD_BYTES:
            self.head += data[: self.HEAD_BYTES - len(self.head)]
        self._hash.update(data)
        self._file.write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def commit(self) -> str:
        """Moves the finished blob to its address (a blob already there is kept); returns the sha256.
        Call it once the row that references the blob is committed."""
        self.close()
        target = self._store.path(self.sha256)
        if target.exists():
            self.tmp_path.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp_path, target)
        return self.sha256

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.tmp_path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def writer(self, max_bytes: int) -> BlobWriter:
        return BlobWriter(self, max_bytes)

    def put(self, data: bytes) -> str:
        writer = self.writer(len(data) + 1)
        writer.write(data)
        return writer.commit()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def stored(self) -> Iterator[list[Path]]:
        """The blob files, one top-level folder (1/256 of the store) at a time."""
        for top in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            yield [p for p in top.glob("[0-9a-f][0-9a-f]/*") if p.is_file()]

    def temporary(self) -> list[Path]:
        return [p for p in self.tmp_dir.iterdir() if p.is_file()]
