"""Sealed cache entries (ground floor): a cached file carries what it was computed from and a keyed digest
(HMAC-SHA256) of that and its content, checked on every read.

A cache is trusted for speed, never for truth. An entry whose seal does not verify, whose recorded inputs
are not the ones asked for, or that cannot be parsed is *stale*: the reader is told why (``StaleEntry``),
recomputes it and replaces it atomically. A plain digest would catch a disk error or a careless edit; the
key also catches a deliberate one, since whoever edits an entry cannot re-seal it without the key. The key
is a local secret: ``$MEMAUDIT_CACHE_KEY`` names its file (a team sharing a cache shares that file), else
``~/.config/memaudit/cache.key``, made on first use, readable by its owner only. Anyone who holds the key
can forge entries; an entry sealed with another key is stale, and is recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.errors import MemauditError

KEY_VARIABLE = "MEMAUDIT_CACHE_KEY"
KEY_BYTES = 32
FORMAT = "memaudit-sealed-v1"


class StaleEntry(Exception):
    """A cache entry that may not be used: missing, unreadable, computed from other inputs, or changed."""


def key_path() -> Path:
    named = os.environ.get(KEY_VARIABLE)
    if named:
        return Path(named)
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "memaudit" / "cache.key"


@cache
def _key_at(path: Path) -> bytes:
    """The key in ``path``, made there (atomically, owner-only) when absent and not named by the user."""
    if not path.is_file() and not os.environ.get(KEY_VARIABLE):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".cache.key.")
        try:
            with os.fdopen(handle, "wb") as stream:  # mkstemp creates it 0600
                stream.write(secrets.token_bytes(KEY_BYTES))
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs is kept
                os.link(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
    try:
        key = path.read_bytes()
    except OSError as error:
        raise MemauditError(
            f"{path}: cannot read the cache key ({error.strerror or error}); set {KEY_VARIABLE} to a key file"
        ) from error
    if len(key) < 16:
        raise MemauditError(f"{path}: a cache key needs at least 16 bytes, the file has {len(key)}")
    return key


def local_key() -> bytes:
    return _key_at(key_path())


def _canonical(provenance: dict) -> bytes:
    return json.dumps(provenance, sort_keys=True, separators=(",", ":")).encode()


def seal_of(provenance: dict, content: Iterable[bytes], *, key: bytes | None = None) -> str:
    """Hex HMAC-SHA256 of the canonical provenance and the content's bytes (streamed in pieces)."""
    mac = hmac.new(key if key is not None else local_key(), _canonical(provenance), hashlib.sha256)
    mac.update(b"\0")
    for piece in content:
        mac.update(piece)
    return mac.hexdigest()


def _check(header: dict, provenance: dict, *, seal: str, path: Path) -> None:
    if header.get("format") != FORMAT or not isinstance(header.get("seal"), str):
        raise StaleEntry(f"{path}: not a sealed memaudit cache entry")
    if header.get("provenance") != provenance:
        raise StaleEntry(f"{path}: computed from other inputs than the ones asked for")
    if not hmac.compare_digest(header["seal"], seal):
        raise StaleEntry(f"{path}: its content does not match its seal (changed after it was written)")


def write_sealed(path: Path, content: bytes, *, provenance: dict) -> Path:
    """One file: a JSON header line (format, provenance, seal), then ``content``; written atomically."""
    header = {"format": FORMAT, "provenance": provenance, "seal": seal_of(provenance, [content])}
    return write_atomic(path, json.dumps(header, sort_keys=True).encode() + b"\n" + content)


def read_sealed(path: Path, *, provenance: dict) -> bytes:
    """The content of a sealed file written for ``provenance``; ``StaleEntry`` saying why when it may not
    be used (``FileNotFoundError`` when there is no entry)."""
    data = Path(path).read_bytes()
    line, separator, content = data.partition(b"\n")
    try:
        header = json.loads(line) if separator else None
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise StaleEntry(f"{path}: not a sealed memaudit cache entry")
    _check(header, provenance, seal=seal_of(provenance, [content]), path=Path(path))
    return content


def write_seal_beside(path: Path, *, provenance: dict, chunk_bytes: int = 1 << 24) -> Path:
    """Seal a large file that is read in place (by offset): its seal goes to ``<path>.seal``."""
    header = {"format": FORMAT, "provenance": provenance, "seal": seal_of(provenance, _pieces(path, chunk_bytes))}
    return write_atomic(_beside(path), json.dumps(header, sort_keys=True) + "\n")


def check_seal_beside(path: Path, *, provenance: dict, chunk_bytes: int = 1 << 24) -> None:
    """Read ``path`` through once and check it against ``<path>.seal``; ``StaleEntry`` saying why not."""
    try:
        header = json.loads(_beside(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StaleEntry(f"{path}: no readable seal beside it ({type(error).__name__})") from error
    if not isinstance(header, dict):
        raise StaleEntry(f"{path}: no readable seal beside it")
    _check(header, provenance, seal=seal_of(provenance, _pieces(path, chunk_bytes)), path=Path(path))


def _beside(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".seal")


def _pieces(path: Path, chunk_bytes: int):
    with open(path, "rb") as stream:
        while piece := stream.read(chunk_bytes):
            yield piece
