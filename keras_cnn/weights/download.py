"""Downloading a published checkpoint into Keras' cache, hash-checked, atomically.

``keras.utils.get_file`` fetches the file (any URL urllib takes: https, http, file). It writes into
a temporary name beside the cache entry; the sha256 is checked before the file takes its final
name, so a wrong or truncated download never sits in the cache and a second call finds only good
files. Offline, the error names the URL and where to put the file by hand.

The cache is ``$KERAS_HOME/models/keras_cnn`` (``~/.keras/models/keras_cnn``). Setting
``KERAS_CNN_WEIGHTS_MIRROR`` to a base URL (``http://mirror.local/weights/``, ``file:///data/w/``)
fetches every checkpoint by its file name from there instead of its official address; the hash
check is the same.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import keras

MIRROR_VARIABLE = "KERAS_CNN_WEIGHTS_MIRROR"
CACHE_SUBDIR = os.path.join("models", "keras_cnn")


def cache_folder() -> Path:
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / CACHE_SUBDIR


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_matches(path, expected: str) -> bool:
    """``expected`` is a full sha256 hex digest or a prefix of one (torchvision's file names)."""
    return sha256_of(path).startswith(expected.lower())


def source_url(url: str) -> str:
    mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
    return f"{mirror.rstrip('/')}/{url.rstrip('/').rsplit('/', 1)[-1]}" if mirror else url


def fetch(url: str, sha256: str, filename: str | None = None) -> Path:
    """The cached file of ``url``, downloaded once and checked against ``sha256``.

    Raises ValueError when the download fails (naming the URL and where to put the file) or the
    hash differs (nothing is left in the cache)."""
    filename = filename or url.rstrip("/").rsplit("/", 1)[-1]
    folder = cache_folder()
    final = folder / filename
    if final.is_file():
        if hash_matches(final, sha256):
            return final
        final.unlink()  # damaged by hand or an older, different file: fetch it again
    folder.mkdir(parents=True, exist_ok=True)
    origin = source_url(url)
    partial = f".{filename}.{os.getpid()}.partial"
    try:
        downloaded = Path(keras.utils.get_file(fname=partial, origin=origin, cache_dir=str(folder.parents[1]),
                                               cache_subdir=CACHE_SUBDIR, force_download=True))
    except Exception as error:  # get_file raises a bare Exception for URL errors
        (folder / partial).unlink(missing_ok=True)
        raise ValueError(
            f"could not download {origin} ({str(error).splitlines()[0][:300]}). Without network access, fetch it "
            f"elsewhere and put it at {final}, or set {MIRROR_VARIABLE} to a folder or server that has it, "
            f"or pass the file's path as weights=") from error
    if not hash_matches(downloaded, sha256):
        got = sha256_of(downloaded)
        downloaded.unlink(missing_ok=True)
        raise ValueError(f"{origin}: sha256 {got} does not match the published {sha256}; the file was discarded")
    os.replace(downloaded, final)
    return final
