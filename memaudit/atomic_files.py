"""Atomic file writes (ground floor): a reader, or a killed run, never sees a half-written file, nor a
folder of outputs half of one run and half of another."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``path`` through a temporary file beside it; an OSError names ``path`` (a full disk's
    ENOSPC comes from a write that knows no file name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        if error.filename is None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def staged_folder(out: Path, *, owned: Iterable[str]) -> Iterator[Path]:
    """Yield an empty folder beside ``out`` to write a set of outputs into; when the block ends without
    an error, move them into ``out`` (a fresh ``out`` is the staging folder renamed: one step).

    Files of an earlier run in a reused ``out`` whose names are in ``owned`` (the names this kind of
    output can have) but not in this set are removed with the rest of the earlier set, so ``out``
    never holds half of one run and half of another; other entries are left alone. On an error
    (while writing, or while moving in) ``out`` is left as it was and the staging folder is removed.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        yield staging
        _move_in(staging, out, owned=set(owned))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_in(staging: Path, out: Path, *, owned: set[str]) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    incoming = sorted(path.name for path in staging.iterdir())
    earlier = [name for name in sorted(owned | set(incoming)) if (out / name).exists()]
    aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".previous"))
    moved_aside, moved_in = [], []
    try:
        for name in earlier:
            os.replace(out / name, aside / name)
            moved_aside.append(name)
        for name in incoming:
            os.replace(staging / name, out / name)
            moved_in.append(name)
    except BaseException:
        for name in moved_in:  # put the earlier set back as it was
            os.replace(out / name, staging / name)
        for name in moved_aside:
            os.replace(aside / name, out / name)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)
