"""Atomic writes: a file or folder appears complete under its name, or not at all.

Everything keras_cnn writes for a user (checkpoints, exports, reports, tables) goes through a
temporary name in the target's own folder and one ``os.replace``; when the writer fails or is
interrupted the temporary file is removed and the target is untouched. This is the package's
only implementation of it.

Example:
    >>> from keras_cnn.atomic import atomic_path, write_text
    >>> _ = write_text("example.txt", "done")
    >>> with atomic_path("example.keras") as tmp:
    ...     tmp.write_bytes(b"model")     # e.g. model.save(tmp)
    5
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, *, directory=False):
    """Yield a temporary path beside ``path`` (same suffix, so writers that look at it still work);
    on a clean exit it replaces ``path``, on an error it is removed and ``path`` is untouched.

    ``directory=True`` yields an empty temporary folder and swaps it in for ``path`` (a folder
    already there is replaced as a whole).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs are shared files
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{''.join(path.suffixes)}", dir=path.parent)
        os.close(fd)
        os.remove(name)  # writers such as model.save create the file themselves
        tmp = Path(name)
    try:
        yield tmp
        if directory:
            _replace_dir(tmp, path)
        else:
            if not tmp.exists():
                raise OSError(f"nothing was written to {path}")
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _replace_dir(tmp: Path, target: Path):
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return write_bytes(path, text.encode("utf-8"))
