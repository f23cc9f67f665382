"""RSA and HMAC helpers that several operators need.

- M-Pesa's SecurityCredential, Airtel's PIN (v1 keys) and Orange Senegal's PIN are RSA
  PKCS#1 v1.5 encryptions, base64-encoded; Airtel's Encryption 2.0 uses OAEP with SHA-256.
- Operators hand out their key as an X.509 certificate (PEM), a PEM public key, or the
  base64 of a DER public key: `load_public_key` reads all three.
- Airtel signs callbacks with base64 HMAC-SHA256.
- What the gateway itself sends to the orchestrator (events, C2B validation questions) is
  signed in Stripe's scheme: `Mmo-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
  "<t>.<body>">`, one `v1` per secret so that a secret can be rotated (`sign_payload`,
  `verify_payload`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mmo_core.errors import ConfigurationError


def load_public_key(material: str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM certificate, a PEM public key or base64 DER."""
    data = material.encode() if isinstance(material, str) else material
    data = data.strip()
    key: object  # a certificate may hold any kind of key; only RSA is accepted below
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        elif b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            der = base64.b64decode(b"".join(data.split()), validate=True)
            try:
                key = serialization.load_der_public_key(der)
            except ValueError:
                key = x509.load_der_x509_certificate(der).public_key()
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ConfigurationError(f"Cannot read the RSA public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError("The key is not an RSA public key")
    return key


def rsa_encrypt_pkcs1v15(key: rsa.RSAPublicKey | str | bytes, plaintext: str) -> str:
    """base64(RSA-PKCS#1-v1.5(plaintext))."""
    public = key if isinstance(key, rsa.RSAPublicKey) else load_public_key(key)
    return base64.b64encode(public.encrypt(plaintext.encode(), padding.PKCS1v15())).decode()


def rsa_encrypt_oaep_sha256(key: rsa.RSAPublicKey | str | bytes, plaintext: str) -> str:
    """base64(RSA-OAEP(SHA-256, MGF1-SHA-256)(plaintext))."""
    public = key if isinstance(key, rsa.RSAPublicKey) else load_public_key(key)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return base64.b64encode(public.encrypt(plaintext.encode(), oaep)).decode()


def hmac_sha256_base64(key: str | bytes, message: bytes) -> str:
    secret = key.encode() if isinstance(key, str) else key
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def hmac_sha256_hex(key: str | bytes, message: bytes) -> str:
    secret = key.encode() if isinstance(key, str) else key
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


SIGNATURE_HEADER = "Mmo-Signature"


def sign_payload(body: bytes, secrets: tuple[str, ...], timestamp: int | None = None) -> str:
    """The `Mmo-Signature` header value of `body` under each of `secrets`."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + body
    parts = [f"t={t}"]
    for secret in secrets:
        parts.append("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    return ",".join(parts)


def verify_payload(
    body: bytes, header: str, secret: str, tolerance: float = 300, now: float | None = None
) -> bool:
    """What a receiver does: check the time, then any `v1` in constant time."""
    items = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [v for k, v in items if k == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    t = int(timestamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in items if k == "v1")


__all__ = [
    "SIGNATURE_HEADER",
    "hmac_sha256_base64",
    "hmac_sha256_hex",
    "load_public_key",
    "rsa_encrypt_oaep_sha256",
    "rsa_encrypt_pkcs1v15",
    "sign_payload",
    "verify_payload",
]
