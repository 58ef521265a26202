"""Sealed cache entries: what a cache may be trusted for (speed) and what not (truth)."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat

import pytest

from memaudit import sealing
from memaudit.errors import MemauditError
from memaudit.sealing import StaleEntry, check_seal_beside, read_sealed, seal_of, write_seal_beside, write_sealed

PROVENANCE = {"kind": "test", "image_sha256": "ab" * 32}


def test_seal_is_the_hmac_of_the_canonical_provenance_and_content():
    key = b"k" * 32
    expected = hmac.new(key, b'{"image_sha256":"' + b"ab" * 32 + b'","kind":"test"}\0payload', hashlib.sha256)
    assert seal_of(PROVENANCE, [b"pay", b"load"], key=key) == expected.hexdigest()


def test_a_sealed_entry_reads_back_its_content(tmp_path):
    write_sealed(tmp_path / "entry", b"\x00\x01features", provenance=PROVENANCE)
    assert read_sealed(tmp_path / "entry", provenance=PROVENANCE) == b"\x00\x01features"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "does not match its seal"),
        (lambda data: data[:-3], "does not match its seal"),
        (lambda data: b"garbage" + data, "not a sealed memaudit cache entry"),
        (lambda data: b"", "not a sealed memaudit cache entry"),
    ],
)
def test_a_changed_entry_is_stale_naming_the_file(tmp_path, damage, reason):
    path = write_sealed(tmp_path / "entry", b"content", provenance=PROVENANCE)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(StaleEntry, match=f"{path}: .*{reason}"):
        read_sealed(path, provenance=PROVENANCE)


def test_an_entry_resealed_without_the_key_or_for_other_inputs_is_stale(tmp_path):
    path = write_sealed(tmp_path / "entry", b"content", provenance=PROVENANCE)
    header = json.loads(path.read_bytes().partition(b"\n")[0])
    forged = header | {"seal": hashlib.sha256(b"forged content").hexdigest()}  # a digest anyone can compute
    path.write_bytes(json.dumps(forged).encode() + b"\nforged content")
    with pytest.raises(StaleEntry, match="does not match its seal"):
        read_sealed(path, provenance=PROVENANCE)
    write_sealed(path, b"content", provenance=PROVENANCE)
    with pytest.raises(StaleEntry, match="computed from other inputs"):
        read_sealed(path, provenance=PROVENANCE | {"image_sha256": "cd" * 32})


def test_a_large_file_is_sealed_beside_and_checked_in_pieces(tmp_path):
    path = tmp_path / "store.npy"
    path.write_bytes(bytes(range(256)) * 100)
    write_seal_beside(path, provenance=PROVENANCE, chunk_bytes=1000)
    check_seal_beside(path, provenance=PROVENANCE, chunk_bytes=333)  # the seal does not depend on the pieces
    data = bytearray(path.read_bytes())
    data[12_345] = 0
    path.write_bytes(bytes(data))
    with pytest.raises(StaleEntry, match="does not match its seal"):
        check_seal_beside(path, provenance=PROVENANCE)
    (tmp_path / "store.npy.seal").unlink()
    with pytest.raises(StaleEntry, match="no readable seal"):
        check_seal_beside(path, provenance=PROVENANCE)


def test_the_key_is_made_once_owner_only_and_another_key_makes_entries_stale(tmp_path, monkeypatch):
    monkeypatch.delenv(sealing.KEY_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    key = sealing.local_key()
    path = tmp_path / "config" / "memaudit" / "cache.key"
    assert path.read_bytes() == key and len(key) == sealing.KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sealing.local_key() == key
    entry = write_sealed(tmp_path / "entry", b"content", provenance=PROVENANCE)
    other = tmp_path / "team.key"
    other.write_bytes(b"t" * 32)
    monkeypatch.setenv(sealing.KEY_VARIABLE, str(other))
    with pytest.raises(StaleEntry, match="does not match its seal"):
        read_sealed(entry, provenance=PROVENANCE)


def test_a_named_key_that_is_missing_or_short_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(sealing.KEY_VARIABLE, str(tmp_path / "absent.key"))
    with pytest.raises(MemauditError, match=r"absent\.key: cannot read the cache key"):
        sealing.local_key()
    (tmp_path / "short.key").write_bytes(b"short")
    monkeypatch.setenv(sealing.KEY_VARIABLE, str(tmp_path / "short.key"))
    with pytest.raises(MemauditError, match=r"short\.key: a cache key needs at least 16 bytes"):
        sealing.local_key()
