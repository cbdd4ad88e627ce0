"""Ed25519 signatures over a run directory's manifest.json.

The manifest lists the SHA-256 of every file of the run; signing the manifest's bytes therefore signs
the whole archive. The signature goes in ``manifest.json.sig`` as JSON: the algorithm, the signer's
public key (PEM) and its fingerprint, and the base64 signature. ``runbook verify --key PUBLIC.pem``
checks it against a key the verifier trusts; without --key it still proves integrity against the
embedded key, and says that it cannot prove who signed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runbook_lib.errors import InputError

SIGNATURE_SUFFIX = ".sig"
KEY_ENV = "RUNBOOK_SIGNING_KEY"


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def keygen(private_path: Path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new Ed25519 private key (PEM, mode 0600) and its public key beside it (``.pub``)."""
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    if private_path.exists() and not overwrite:
        raise InputError(f"{private_path} already exists; refusing to overwrite a signing key (remove it first)")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_text(_public_pem(key.public_key()), encoding="utf-8")
    return private_path, public_path


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: cannot load the signing key ({exc}); make one with `runbook keygen --out {path}`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot load the public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path}: not an Ed25519 public key")
    return key


def resolve_key(configured: Path | None, *, generate_missing: bool = False) -> Path | None:
    """The signing key to use: the parameters' path, else $RUNBOOK_SIGNING_KEY, else None (unsigned).
    A configured key that does not exist is an input error, unless the parameters allow generating it."""
    path = configured or (Path(os.environ[KEY_ENV]) if os.environ.get(KEY_ENV) else None)
    if path is None:
        return None
    if not path.exists():
        if generate_missing:
            keygen(path)
        else:
            raise InputError(f"signing key {path} does not exist; make one with `runbook keygen --out {path}` "
                             "or remove signoff.signing_key")
    return path


def key_fingerprint(key_path: Path | None) -> str:
    """The fingerprint of a private key's public half ("" for no key)."""
    return fingerprint(load_private(key_path).public_key()) if key_path else ""


def signed_by(target: Path) -> str:
    """The fingerprint recorded in ``target``'s signature file ("" when unsigned or unreadable). What a
    re-rendered report names as the signer; the signature itself is checked by :func:`verify_file`."""
    try:
        return json.loads(Path(str(target) + SIGNATURE_SUFFIX).read_text(encoding="utf-8")).get("key_fingerprint", "")
    except (OSError, ValueError, AttributeError):
        return ""


def sign_file(target: Path, key_path: Path) -> Path:
    key = load_private(key_path)
    sig = key.sign(Path(target).read_bytes())
    out = Path(str(target) + SIGNATURE_SUFFIX)
    out.write_text(_canonical({
        "algorithm": "ed25519", "signed_file": Path(target).name, "key_fingerprint": fingerprint(key.public_key()),
        "public_key": _public_pem(key.public_key()), "signature": base64.b64encode(sig).decode(),
    }), encoding="utf-8")
    return out


def _canonical(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def verify_file(target: Path, trusted: Path | None = None) -> tuple[bool, str]:
    """Check ``target``'s signature. Returns (valid, what was checked, in words)."""
    sig_path = Path(str(target) + SIGNATURE_SUFFIX)
    if not sig_path.exists():
        return (trusted is None), f"{target.name} is not signed" + (" but --key was given" if trusted else "")
    try:
        raw = sig_path.read_text(encoding="utf-8")
        data = json.loads(raw)
        embedded = serialization.load_pem_public_key(data["public_key"].encode())
        signature = base64.b64decode(data["signature"], validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return False, f"{sig_path.name} is malformed: {exc}"
    # Every byte of the signature file means something: a changed fingerprint, file name or layout is
    # tampering too, even where the signature itself still verifies.
    if (raw != _canonical(data) or data.get("signed_file") != target.name or data.get("algorithm") != "ed25519"
            or not isinstance(embedded, Ed25519PublicKey) or data.get("key_fingerprint") != fingerprint(embedded)):
        return False, f"{sig_path.name} was altered (its fields do not match what was signed)"
    key = load_public(trusted) if trusted else embedded
    if trusted and fingerprint(key) != fingerprint(embedded):
        return False, f"bad signature on {target.name}: signed by {fingerprint(embedded)}, not the trusted key {fingerprint(key)}"
    try:
        key.verify(signature, Path(target).read_bytes())
    except InvalidSignature:
        return False, f"bad signature: {sig_path.name} does not match {target.name} (key {fingerprint(key)})"
    if trusted:
        return True, f"signature valid, made by the trusted key {fingerprint(key)}"
    return True, (f"signature valid against its embedded key {fingerprint(key)}; pass --key PUBLIC.pem to check "
                  "that this key is the one you trust")
