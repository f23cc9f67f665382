import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from mmo_core import crypto
from mmo_core.errors import ConfigurationError

PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = PRIVATE.public_key()


def certificate_pem() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(PUBLIC)
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(PRIVATE, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


FORMS = {
    "certificate": certificate_pem(),
    "pem": PUBLIC.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ),
    "der-base64": base64.b64encode(
        PUBLIC.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ),
}


@pytest.mark.parametrize("form", FORMS)
def test_pkcs1v15_round_trip_from_every_key_form(form):
    encrypted = crypto.rsa_encrypt_pkcs1v15(FORMS[form].decode(), "Safaricom999!*!")
    assert PRIVATE.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()) == b"Safaricom999!*!"


def test_oaep_sha256_round_trip():
    encrypted = crypto.rsa_encrypt_oaep_sha256(FORMS["pem"], "1234")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert PRIVATE.decrypt(base64.b64decode(encrypted), oaep) == b"1234"


@pytest.mark.parametrize(
    "bad", ["not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "@@@"]
)
def test_unreadable_keys_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError):
        crypto.load_public_key(bad)


def test_hmac_helpers():
    import hashlib
    import hmac

    assert crypto.hmac_sha256_hex("k", b"m") == hmac.new(b"k", b"m", hashlib.sha256).hexdigest()
    assert base64.b64decode(crypto.hmac_sha256_base64("k", b"m")).hex() == crypto.hmac_sha256_hex(
        "k", b"m"
    )
