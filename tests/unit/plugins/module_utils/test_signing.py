"""Unit tests of module_utils/signing.py: HMAC-SHA256 and ed25519 manifest signatures."""

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.signing import SignatureError, sign, verify

MANIFEST = b'{"files": [{"sha256": "ab"}]}'


def test_hmac_signature_verifies_and_refuses_changes_and_other_keys():
    record = sign(MANIFEST, {"key": "secret"})
    assert record["algorithm"] == "hmac-sha256"
    assert verify(MANIFEST, record, {"key": "secret"})
    with pytest.raises(SignatureError, match="does not match its manifest"):
        verify(MANIFEST.replace(b"ab", b"cd"), record, {"key": "secret"})
    with pytest.raises(SignatureError, match="does not match its manifest"):
        verify(MANIFEST, record, {"key": "other"})


def test_ed25519_is_signed_with_the_private_key_and_checked_with_the_public_one(ed25519_key_files):
    private_file, public_file = ed25519_key_files
    record = sign(MANIFEST, {"algorithm": "ed25519", "key_file": str(private_file)})
    assert verify(MANIFEST, record, {"algorithm": "ed25519", "key_file": str(public_file)})
    with pytest.raises(SignatureError, match="ed25519 signature of the bundle does not match"):
        verify(MANIFEST + b" ", record, {"algorithm": "ed25519", "key_file": str(public_file)})
    with pytest.raises(SignatureError, match="is not an unencrypted PEM private key"):
        sign(MANIFEST, {"algorithm": "ed25519", "key_file": str(public_file)})


@pytest.mark.parametrize("record, message", [
    (None, "is not signed, and a signature is required"),
    ({"algorithm": "ed25519", "signature": "AAAA"}, "signed with 'ed25519', and 'hmac-sha256' was expected"),
    ({"algorithm": "hmac-sha256", "signature": "not base64!"}, "is not base64"),
])
def test_missing_or_malformed_signatures_are_refused(record, message):
    with pytest.raises(SignatureError, match=message):
        verify(MANIFEST, record, {"key": "secret"})


def test_an_empty_hmac_key_is_refused():
    with pytest.raises(SignatureError, match="the HMAC key is empty"):
        sign(MANIFEST, {"key": ""})
