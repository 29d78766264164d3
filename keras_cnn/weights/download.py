"""Downloading a published checkpoint into Keras' cache, hash-checked, atomically.

``keras.utils.get_file`` fetches the file (any URL urllib takes: https, http, file). It writes into
a temporary name beside the cache entry; the sha256 is checked before the file takes its final
name, so a wrong or truncated download never sits in the cache and a second call finds only good
files. Offline, the error names the URL and where to put the file by hand. A file found at the cache
path with another hash (a user's wrong file, an older download) is never deleted: it is renamed to
``FILE.DIGEST8.sha256-mismatch`` with a warning naming both hashes, and the file is fetched again.

The cache is ``$KERAS_HOME/models/keras_cnn`` (``~/.keras/models/keras_cnn``). Setting
``KERAS_CNN_WEIGHTS_MIRROR`` to a base URL (``http://mirror.local/weights/``, ``file:///data/w/``)
fetches every checkpoint by its file name from there instead of its official address; the hash
check is the same.

Hugging Face files (timm's checkpoints) carry no hash in their URL. Their sha256 is published by
the hub itself: a ``HEAD`` request on the ``resolve`` URL answers with the LFS object's sha256 in
its ``X-Linked-Etag`` header (what ``huggingface_hub`` checks its downloads against).
:func:`published_sha256` reads it, the download is checked against it, and the digest is kept
beside the cached file (``FILE.sha256``), so later calls check the cache offline. ``HF_ENDPOINT``
(the variable ``huggingface_hub`` reads) points these requests at a mirror of the hub.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import keras

MIRROR_VARIABLE = "KERAS_CNN_WEIGHTS_MIRROR"
HUB_VARIABLE = "HF_ENDPOINT"
HUB = "https://huggingface.co"
CACHE_SUBDIR = os.path.join("models", "keras_cnn")
HASH_TIMEOUT_S = 30

log = logging.getLogger("keras_cnn")


def keras_home() -> Path:
    """``$KERAS_HOME``, or ``~/.keras``: where Keras and keras_cnn keep their caches."""
    return Path(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"))


def cache_folder() -> Path:
    return keras_home() / CACHE_SUBDIR


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_matches(path, expected: str) -> bool:
    """``expected`` is a full sha256 hex digest or a prefix of one (torchvision's file names)."""
    return sha256_of(path).startswith(expected.lower())


def hub_url(url: str) -> str:
    """``url`` with the Hugging Face hub replaced by ``$HF_ENDPOINT`` when it is set."""
    endpoint = os.environ.get(HUB_VARIABLE, "").strip().rstrip("/")
    return endpoint + url[len(HUB):] if endpoint and url.startswith(HUB + "/") else url


def source_url(url: str, filename: str | None = None) -> str:
    mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{filename or url.rstrip('/').rsplit('/', 1)[-1]}"
    return hub_url(url)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the hub's answer itself holds the hash, not the CDN's
        return None


def published_sha256(url: str) -> str:
    """The sha256 the Hugging Face hub publishes for the file at ``url`` (its ``X-Linked-Etag``).

    Raises ValueError when the hub cannot be reached or publishes no sha256 for the file."""
    url = hub_url(url)
    request = urllib.request.Request(url, method="HEAD", headers={"Accept-Encoding": "identity"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        response = opener.open(request, timeout=HASH_TIMEOUT_S)
        headers = response.headers
    except urllib.error.HTTPError as answer:  # a 3xx to the CDN, refused above, carries the headers
        if not 300 <= answer.code < 400:
            raise ValueError(f"could not read the published sha256 of {url}: HTTP {answer.code}") from answer
        headers = answer.headers
    except (urllib.error.URLError, OSError) as error:
        raise ValueError(
            f"could not read the published sha256 of {url} ({error}); files are only downloaded hash-checked. "
            f"Without network access, fetch the file elsewhere and pass its path as weights=, or set "
            f"{HUB_VARIABLE} to a mirror of the hub") from error
    etag = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").strip().strip('"').removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9a-f]{64}", etag.lower()):
        raise ValueError(f"{url}: the hub published no sha256 for this file (ETag {etag!r})")
    return etag.lower()


def recorded_sha256(filename: str) -> str:
    """The sha256 kept beside a cached file whose hash came from the hub ('' when none is)."""
    record = cache_folder() / f"{filename}.sha256"
    return record.read_text().strip() if record.is_file() else ""


def fetch_from_hub(url: str, filename: str) -> Path:
    """The cached file of a Hugging Face ``url``, checked against the sha256 the hub publishes (asked
    once; later calls check the cache against the digest recorded beside it, offline)."""
    sha256 = recorded_sha256(filename)
    if not (sha256 and (cache_folder() / filename).is_file()):
        sha256 = published_sha256(url)
    path = fetch(url, sha256, filename)
    record = cache_folder() / f"{filename}.sha256"
    partial = record.with_name(f".{record.name}.{os.getpid()}.partial")
    partial.write_text(sha256 + "\n")
    os.replace(partial, record)
    return path


def move_aside(path: Path, expected: str) -> str:
    """Rename the cached ``path`` whose sha256 is not ``expected`` to ``PATH.DIGEST8.sha256-mismatch``
    (``-2``, ``-3``, ... when that name is taken: no file is overwritten) and say so in one sentence.

    The file may be one a user put there by hand (the download error names this path), so keras_cnn
    keeps it: only its own ``.partial`` temporaries are ever deleted."""
    got = sha256_of(path)
    base = path.with_name(f"{path.name}.{got[:8]}.sha256-mismatch")
    for number in itertools.count(1):
        target = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            os.link(path, target)  # fails when target exists: nothing is overwritten
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links
            if target.exists():
                continue
            os.rename(path, target)
            break
        path.unlink()  # the file lives on under target
        break
    return f"The file at {path} has sha256 {got}, not the published {expected}; it was moved aside to {target.name}"


def fetch(url: str, sha256: str, filename: str | None = None) -> Path:
    """The cached file of ``url``, downloaded once and checked against ``sha256``.

    A cached file with another hash (put there by hand, or an older download) is moved aside by
    :func:`move_aside`, never deleted, and the file is downloaded again; a warning and any error name
    where it went and its hash. Raises ValueError when the download fails (naming the URL and where to
    put the file) or the downloaded file's hash differs (the download is discarded)."""
    filename = filename or url.rstrip("/").rsplit("/", 1)[-1]
    folder = cache_folder()
    final = folder / filename
    set_aside = ""
    if final.is_file():
        if hash_matches(final, sha256):
            return final
        set_aside = move_aside(final, sha256)  # a user's file or an older download: kept, never deleted
    folder.mkdir(parents=True, exist_ok=True)
    origin = source_url(url, filename)
    partial = f".{filename}.{os.getpid()}.partial"
    try:
        downloaded = Path(keras.utils.get_file(fname=partial, origin=origin, cache_dir=str(folder.parents[1]),
                                               cache_subdir=CACHE_SUBDIR, force_download=True))
    except Exception as error:  # get_file raises a bare Exception for URL errors
        (folder / partial).unlink(missing_ok=True)
        reason = str(error).splitlines()[0].replace(f"URL fetch failure on {origin}: ", "").replace("None -- ", "")
        if set_aside:  # what happened to the user's file first, then the same advice (its path named once)
            raise ValueError(
                f"{set_aside}. Could not download {origin} ({reason[:200]}); without network access, put the "
                f"published file at that path, or set {MIRROR_VARIABLE} to a folder or server that has it, or pass "
                f"the file's path as weights=") from error
        raise ValueError(
            f"could not download {origin} ({reason[:200]}). Without network access, fetch it elsewhere and put it at "
            f"{final}, or set {MIRROR_VARIABLE} to a folder or server that has it, or pass the file's path as "
            f"weights=") from error
    if not hash_matches(downloaded, sha256):
        got = sha256_of(downloaded)
        downloaded.unlink(missing_ok=True)
        raise ValueError(f"{origin}: sha256 {got} does not match the published {sha256}; the download was discarded"
                         + (f". {set_aside}" if set_aside else ""))
    os.replace(downloaded, final)
    if set_aside:
        log.warning("keras_cnn: %s; the published file was downloaded in its place", set_aside)
    return final
