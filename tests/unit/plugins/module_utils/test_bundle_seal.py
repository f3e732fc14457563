"""Unit tests of module_utils/bundle_seal.py: every file's SHA-256, a signature over the list, checks before writes."""

from __future__ import annotations

import json

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import BundleTampered, check_seal, seal

KEY = {"algorithm": "hmac-sha256", "key": "secret"}


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "bundle"
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "sub" / "a.bin").write_bytes(b"a" * 1000)
    (root / "data" / "b.txt").write_text("b")
    (root / "manifest.json").write_text("{}")
    return root


def test_a_sealed_bundle_checks_and_a_reseal_changes_nothing(bundle):
    assert seal(str(bundle), KEY) is True
    assert seal(str(bundle), KEY) is False
    listed = check_seal(str(bundle), KEY)
    assert sorted(listed) == ["data/b.txt", "data/sub/a.bin", "manifest.json"]
    assert json.loads((bundle / "SHA256SUMS.sig").read_text())["algorithm"] == "hmac-sha256"


@pytest.mark.parametrize("edit, complaint", [
    (lambda root: (root / "data" / "b.txt").write_text("B"), "mismatched: data/b.txt"),
    (lambda root: (root / "manifest.json").unlink(), "missing: manifest.json"),
    (lambda root: (root / "data" / "extra").write_text("x"), "extra: data/extra"),
])
def test_an_edit_anywhere_is_named(bundle, edit, complaint):
    seal(str(bundle))
    edit(bundle)
    with pytest.raises(BundleTampered, match="does not match its SHA256SUMS") as refused:
        check_seal(str(bundle))
    assert complaint.split(": ")[1] in str(refused.value)


def test_a_file_checked_later_is_not_read_now(bundle):
    seal(str(bundle))
    (bundle / "data" / "sub" / "a.bin").write_bytes(b"b" * 1000)  # the caller checks it as it reads it
    assert check_seal(str(bundle), later={"data/sub/a.bin"})["data/sub/a.bin"]


def test_a_resealed_bundle_fails_the_signature_and_an_unsigned_one_is_refused_with_a_key(bundle):
    seal(str(bundle), KEY)
    (bundle / "data" / "b.txt").write_text("forged")
    seal(str(bundle))  # the digests recomputed without the key: the old signature stays
    assert check_seal(str(bundle))  # consistent, and no key asked for
    with pytest.raises(BundleTampered, match="altered after signing"):
        check_seal(str(bundle), KEY)
    (bundle / "SHA256SUMS.sig").unlink()
    with pytest.raises(BundleTampered, match="is not signed, and a signature is required"):
        check_seal(str(bundle), KEY)
    (bundle / "SHA256SUMS").unlink()
    with pytest.raises(BundleTampered, match="is not sealed"):
        check_seal(str(bundle), KEY)
    assert check_seal(str(bundle)) is None  # a bundle from before seals, no key: the bundle's own checks apply


def test_ed25519_signs_with_the_private_key_and_checks_with_the_public_one(bundle, ed25519_key_files):
    private_file, public_file = ed25519_key_files
    seal(str(bundle), {"algorithm": "ed25519", "key_file": str(private_file)})
    assert check_seal(str(bundle), {"algorithm": "ed25519", "key_file": str(public_file)})
    (bundle / "SHA256SUMS").write_text((bundle / "SHA256SUMS").read_text() + "\n")
    with pytest.raises(BundleTampered, match="ed25519 signature"):
        check_seal(str(bundle), {"algorithm": "ed25519", "key_file": str(public_file)})
