"""Fixtures shared by the module_utils unit tests."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


@pytest.fixture
def ed25519_key_files(tmp_path):
    """``(private key file, public key file)``: a fresh ed25519 pair as PEM, the signer's and the checker's."""
    private = ed25519.Ed25519PrivateKey.generate()
    private_file, public_file = tmp_path / "sign.pem", tmp_path / "check.pem"
    private_file.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    public_file.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_file, public_file
