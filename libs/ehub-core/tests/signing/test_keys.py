"""Key objects and the on-disk key ring: secrecy, fingerprints, file modes, rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import stat
from datetime import timedelta

import pytest

from ehub_core.signing import (
    HubKey,
    KeyFileError,
    KeyRing,
    NoActiveKeyError,
    PublicKeyInfo,
    fingerprint,
    hub_of,
)


def test_fingerprint_is_sha256_base64_unpadded_of_the_raw_public_key(cn_key):
    expected = base64.b64encode(hashlib.sha256(cn_key.public_key).digest()).decode().rstrip("=")
    assert cn_key.fingerprint == fingerprint(cn_key.public_key) == "SHA256:" + expected
    assert len(cn_key.fingerprint) == len("SHA256:") + 43


def test_private_key_never_appears_in_repr_or_str(cn_key):
    pem = cn_key.private_pkcs8_pem()
    secret_b64 = pem.decode().split("\n")[1]
    for text in (repr(cn_key), str(cn_key), repr(cn_key.public_info)):
        assert secret_b64 not in text and "PRIVATE" not in text
        assert cn_key.kid in text and cn_key.fingerprint in text


def test_hub_key_refuses_to_be_pickled(cn_key):
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(cn_key)


def test_key_ids_name_their_hub():
    assert hub_of("CN#2026-11") == "CN"
    assert hub_of("CA#2026-11.2") == "CA"
    for bad in ("cn#2026-11", "CN2026", "CHN#1", "CN#", "CN#a b"):
        with pytest.raises(ValueError):
            hub_of(bad)


def test_naive_datetimes_are_refused(now):
    with pytest.raises(ValueError, match="timezone-aware"):
        HubKey.generate(kid="CN#x", not_before=now.replace(tzinfo=None), not_after=now)


def test_public_key_info_round_trips_through_its_published_form(cn_key):
    published = cn_key.public_info.to_dict()
    assert published["not_before"].endswith("Z")
    assert PublicKeyInfo.from_dict(published) == cn_key.public_info


def test_published_key_with_a_wrong_fingerprint_is_refused(cn_key, make_key):
    published = cn_key.public_info.to_dict()
    published["fingerprint"] = make_key().fingerprint
    with pytest.raises(ValueError, match="fingerprint"):
        PublicKeyInfo.from_dict(published)


def test_pkcs8_export_reloads_to_the_same_key(cn_key):
    again = HubKey.from_pkcs8_pem(
        cn_key.private_pkcs8_pem(),
        kid=cn_key.kid,
        not_before=cn_key.not_before,
        not_after=cn_key.not_after,
    )
    assert again.public_key == cn_key.public_key
    assert cn_key.public_info.verify(b"m", again.sign(b"m"))


def test_verify_rejects_wrong_length_and_wrong_message(cn_key):
    signature = cn_key.sign(b"message")
    info = cn_key.public_info
    assert info.verify(b"message", signature)
    assert not info.verify(b"messagE", signature)
    assert not info.verify(b"message", signature[:-1])
    assert not info.verify(b"message", b"")


# -- key ring on disk ---------------------------------------------------------------------


def test_key_files_are_created_0600_in_a_0700_directory(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    key = ring.generate(now)
    key_file = tmp_path / "keys" / "CN_2026-11.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert key_file.read_bytes() == key.private_pkcs8_pem()


def test_key_file_is_0600_even_under_a_permissive_umask(tmp_path, now):
    old = os.umask(0)
    try:
        KeyRing(tmp_path / "keys", "CN").generate(now)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keys" / "CN_2026-11.pem").stat().st_mode) == 0o600


def test_metadata_holds_no_private_material(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    key = ring.generate(now)
    meta = json.loads((tmp_path / "keys" / "keyring.json").read_text())
    secret_b64 = key.private_pkcs8_pem().decode().split("\n")[1]
    assert secret_b64 not in json.dumps(meta)
    assert meta["keys"][0]["fingerprint"] == key.fingerprint


def test_key_ring_reloads_from_disk(tmp_path, now):
    key = KeyRing(tmp_path / "keys", "CN").generate(now)
    again = KeyRing(tmp_path / "keys", "CN")
    assert again.active_key(now).public_key == key.public_key
    assert again.active_key(now).not_before == key.not_before


def test_group_readable_key_file_is_refused_on_load(tmp_path, now):
    """Group read is refused when the file's group is not this process's own (a shared
    group could read the key), and so is anything readable by others."""
    KeyRing(tmp_path / "keys", "CN").generate(now)
    pem = tmp_path / "keys" / "CN_2026-11.pem"
    pem.chmod(0o640)
    other_gid = os.getegid() + 4242
    if os.geteuid() == 0:
        os.chown(pem, -1, other_gid)
        with pytest.raises(KeyFileError, match="chmod 600"):
            KeyRing(tmp_path / "keys", "CN")
        os.chown(pem, -1, os.getegid())
    pem.chmod(0o604)
    with pytest.raises(KeyFileError, match="chmod 600"):
        KeyRing(tmp_path / "keys", "CN")
    pem.chmod(0o660)  # group write: never
    with pytest.raises(KeyFileError, match="chmod 600"):
        KeyRing(tmp_path / "keys", "CN")
    assert KeyRing(tmp_path / "keys", "CN", strict_permissions=False).all_keys()


def test_group_read_by_the_process_own_group_is_allowed(tmp_path, now):
    """A Kubernetes fsGroup volume adds group read for the pod's own group: still loads."""
    key = KeyRing(tmp_path / "keys", "CN").generate(now)
    pem = tmp_path / "keys" / "CN_2026-11.pem"
    if os.geteuid() == 0:
        os.chown(pem, -1, os.getegid())
    pem.chmod(0o640)
    assert KeyRing(tmp_path / "keys", "CN").active_key(now).public_key == key.public_key


def test_key_ring_of_another_hub_is_refused(tmp_path, now):
    KeyRing(tmp_path / "keys", "CN").generate(now)
    with pytest.raises(KeyFileError, match="hub CA"):
        KeyRing(tmp_path / "keys", "CA")


def test_swapped_key_file_is_detected(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    ring.generate(now)
    ring.rotate(now + timedelta(days=1))
    first, second = tmp_path / "keys" / "CN_2026-11.pem", tmp_path / "keys" / "CN_2026-11.2.pem"
    first_bytes = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(first_bytes)
    with pytest.raises(KeyFileError, match="does not hold the key"):
        KeyRing(tmp_path / "keys", "CN")


def test_rotation_activates_a_new_key_and_keeps_the_old_one_published(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    old = ring.generate(now - timedelta(days=10), lifetime=timedelta(days=30))
    new = ring.rotate(now)
    assert new.kid == "CN#2026-11.2"  # same month: suffixed, never reused
    assert ring.active_key(now).kid == new.kid
    assert ring.active_key(now - timedelta(days=1)).kid == old.kid
    assert [k.kid for k in ring.public_keys(now)] == [old.kid, new.kid]
    assert [k.kid for k in ring.public_keys(old.not_after + timedelta(seconds=1))] == [new.kid]


def test_pre_published_key_is_not_active_before_its_not_before(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    current = ring.generate(now)
    upcoming = ring.generate(now, not_before=now + timedelta(days=20))
    assert ring.active_key(now).kid == current.kid
    assert ring.active_key(now + timedelta(days=21)).kid == upcoming.kid
    assert upcoming.kid == "CN#2026-12"


def test_no_active_key_is_an_explicit_error_and_ensure_active_fixes_it(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    with pytest.raises(NoActiveKeyError):
        ring.active_key(now)
    key = ring.ensure_active(now)
    assert ring.ensure_active(now) is key


def test_prune_deletes_long_expired_keys_and_their_files(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    old = ring.generate(now - timedelta(days=100), lifetime=timedelta(days=30))
    ring.rotate(now)
    assert ring.prune(now, keep_for=timedelta(days=90)) == []
    assert ring.prune(now, keep_for=timedelta(days=7)) == [old.kid]
    assert not (tmp_path / "keys" / "CN_2026-08.pem").exists()
    assert [k.kid for k in KeyRing(tmp_path / "keys", "CN").all_keys()] == ["CN#2026-11"]


def test_two_rings_on_one_directory_do_not_lose_each_others_keys(tmp_path, now):
    a, b = KeyRing(tmp_path / "keys", "CN"), KeyRing(tmp_path / "keys", "CN")
    a.generate(now)
    b.generate(now + timedelta(days=1))  # b re-reads under the lock before writing
    assert len(KeyRing(tmp_path / "keys", "CN").all_keys()) == 2


def test_keyring_importable_from_keys_module_too():
    from ehub_core.signing.keys import KeyRing as FromKeys

    assert FromKeys is KeyRing


def test_revoking_the_active_key_deletes_it_and_hands_back_a_new_signer(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    old = ring.generate(now)
    signer = ring.revoke(old.kid, now)
    assert signer.kid == "CN#2026-11.2"  # a revoked id is never reused
    assert ring.active_key(now).kid == signer.kid
    assert ring.get(old.kid) is None
    assert old.kid not in [k.kid for k in ring.all_keys() + ring.public_keys()]
    assert not (tmp_path / "keys" / "CN_2026-11.pem").exists()
    assert ring.revoked_kids() == [old.kid]
    info = ring.resolve(old.kid)
    assert info is not None and info.revoked and info.public_key == old.public_key


def test_revocation_survives_a_reload_and_is_idempotent(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    first = ring.generate(now)
    later = now + timedelta(seconds=1)
    second = ring.rotate(later)
    assert ring.revoke(first.kid, later).kid == second.kid  # another key was already valid
    again = KeyRing(tmp_path / "keys", "CN")
    assert again.revoked_kids() == [first.kid]
    assert again.revoke(first.kid, later).kid == second.kid
    assert [k.kid for k in again.revoked_keys()] == [first.kid]


def test_revoking_an_unknown_key_is_an_error(tmp_path, now):
    ring = KeyRing(tmp_path / "keys", "CN")
    ring.generate(now)
    with pytest.raises(KeyError):
        ring.revoke("CN#1999-01", now)
