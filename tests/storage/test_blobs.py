"""FileBlobStore: content addressing, atomic writes, key validation and crash leftovers."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from storage import BlobNotFound, BlobStore, FileBlobStore, InvalidBlobKey
from storage.blobs import TEMP_PREFIX, validate_key


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    data = b"hello chibi"
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.put(data) == key
    assert store.get(key) == data
    assert store.exists(key)
    path = store.local_path(key)
    assert path is not None and path == tmp_path / key[:2] / key[2:4] / key
    assert list(store.keys()) == [key]
    assert isinstance(store, BlobStore)


def test_put_of_existing_content_refreshes_its_age(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    key = store.put(b"old picture")
    path = store.path_for(key)
    _age(path, 7200)
    assert list(store.keys(older_than=3600)) == [key]
    store.put(b"old picture")
    assert list(store.keys(older_than=3600)) == []


def test_delete_and_missing_blobs(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    key = store.put(b"x")
    assert store.delete(key) is True
    assert store.delete(key) is False
    assert not store.exists(key)
    assert store.local_path(key) is None
    with pytest.raises(BlobNotFound):
        store.get(key)
    with pytest.raises(KeyError):  # BlobNotFound is also a KeyError
        store.get(key)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "..",
        "/etc/passwd",
        "a" * 63,
        "a" * 65,
        "A" * 64,  # upper case is not what put() produces
        "g" * 64,
        "ab/" + "c" * 61,
        "ab\\" + "c" * 61,
        "a" * 63 + "\n",
        "a" * 63 + "\x00",
        "",
        b"a" * 64,
        None,
        64,
    ],
)
def test_key_validation_rejects_anything_but_sha256_hex(tmp_path: Path, bad: object) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(InvalidBlobKey):
        validate_key(bad)
    for method in (store.get, store.exists, store.delete, store.local_path, store.path_for):
        with pytest.raises(InvalidBlobKey):
            method(bad)  # type: ignore[arg-type]


def test_traversal_cannot_reach_files_outside_the_root(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    store = FileBlobStore(tmp_path / "blobs")
    with pytest.raises(InvalidBlobKey):
        store.get("../secret.txt")
    with pytest.raises(InvalidBlobKey):
        store.delete("../../secret.txt")
    assert secret.read_text() == "top secret"


def test_a_crashed_write_leaves_no_visible_key_and_sweep_removes_it(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    data = b"half written"
    key = hashlib.sha256(data).hexdigest()
    # What a crash between write and rename leaves behind: a temp file in the target directory.
    directory = tmp_path / key[:2] / key[2:4]
    directory.mkdir(parents=True)
    leftover = directory / f"{TEMP_PREFIX}deadbeefdeadbeef"
    leftover.write_bytes(data[:4])
    assert not store.exists(key)
    assert list(store.keys()) == []
    assert list(store.keys(older_than=0)) == []
    # Young temp files may belong to a write in progress: left alone.
    assert store.sweep_temp(older_than=3600) == 0
    assert leftover.exists()
    _age(leftover, 7200)
    assert store.sweep_temp(older_than=3600) == 1
    assert not leftover.exists()
    # The real write still works afterwards.
    assert store.put(data) == key and store.get(key) == data


def test_a_failed_rename_removes_the_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileBlobStore(tmp_path)

    def broken_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"never stored")
    monkeypatch.undo()
    assert list(store.keys()) == []
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_keys_ignore_stray_files(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    key = store.put(b"real")
    (tmp_path / "README").write_text("not a blob")
    (tmp_path / key[:2] / key[2:4] / "notes.txt").write_text("not a blob")
    misplaced = "f" * 64
    (tmp_path / key[:2] / key[2:4] / misplaced).write_text("wrong directory for this name")
    assert list(store.keys()) == [key]


def test_put_rejects_non_bytes(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(TypeError):
        store.put("text")  # type: ignore[arg-type]
