# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: is the VPN's PKI on the VPS complete, as the role would make it?

The role makes the PKI with community.crypto: five tasks, each re-reading and re-checking every
key, request and certificate on every run (3-4 s of an idempotent converge over SSH). `check_pki`
reads what is there once and says whether those tasks have anything to do: every file present,
keys root-only and secp384r1, the CA self-signed under its name, the server's and the client's
certificates signed by that CA for their names and uses, each matching its key, none due for
renewal. Anything else is a problem, named, and the role runs the community.crypto tasks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

try:
    from typing import Dict, List, Optional
except ImportError:  # pragma: no cover
    Dict = List = Optional = None

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - the role installs python3-cryptography first
    HAS_CRYPTOGRAPHY = False

KEYS = ("ca.key", "server.key", "client.key", "tls-crypt.key")
CERTS = ("ca", "server", "client")
FILES = ("ca.key", "ca.crt", "server.key", "server.crt", "client.key", "client.crt", "tls-crypt.key")
# What a router needs to connect: handed out through the fact omr_vps_vpn.
CLIENT_FILES = ("ca.crt", "client.crt", "client.key", "tls-crypt.key")
CURVE = "secp384r1"
TLS_CRYPT_HEADER = b"-----BEGIN OpenVPN Static key V1-----"


def _not_after(cert):
    # type: (object) -> datetime.datetime
    # cryptography 42 added the aware property and deprecated the naive one; Debian 12 has 38.
    aware = getattr(cert, "not_valid_after_utc", None)
    if aware is not None:
        return aware
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _spki(public_key):
    # type: (object) -> bytes
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _common_name(cert):
    # type: (object) -> Optional[str]
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else None


def _signed_by(cert, issuer_key):
    # type: (object, object) -> bool
    try:
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except (InvalidSignature, TypeError, AttributeError):
        return False
    return True


def _extension(cert, cls):
    # type: (object, object) -> Optional[object]
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _load_key(name, data, problems):
    # type: (str, bytes, List[str]) -> Optional[object]
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        problems.append("%s is not a PEM private key without a passphrase" % name)
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != CURVE:
        problems.append("%s is not a %s EC key" % (name, CURVE))
        return None
    return key


def _check_cert(name, cert, key, names, ca, problems):
    # type: (str, object, Optional[object], Dict[str, str], Optional[object], List[str]) -> None
    """The name, CA flag, use, key and signature of one certificate (the CA's against itself)."""
    crt = name + ".crt"
    if _common_name(cert) != names[name]:
        problems.append("%s is for %r, not %r" % (crt, _common_name(cert), names[name]))
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or constraints.ca != (name == "ca"):
        problems.append("%s %s a CA certificate" % (crt, "is not" if name == "ca" else "is"))
    if name != "ca":
        wanted = ExtendedKeyUsageOID.SERVER_AUTH if name == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        usage = _extension(cert, x509.ExtendedKeyUsage)
        if usage is None or wanted not in usage:
            problems.append("%s is not for %s authentication" % (crt, name))
    if key is not None and _spki(cert.public_key()) != _spki(key.public_key()):
        problems.append("%s does not match %s.key" % (crt, name))
    if ca is not None and (cert.issuer != ca.subject or not _signed_by(cert, ca.public_key())):
        problems.append("%s is not signed by %s" % (crt, "itself" if name == "ca" else "ca.crt"))


def check_pki(files, modes, names, now, renew_before_days):
    # type: (Dict[str, Optional[bytes]], Dict[str, int], Dict[str, str], datetime.datetime, int) -> Dict[str, object]
    """What is wrong with the PKI in `files` (name -> content, None when missing; `modes` the
    files' permission bits) against `names` ({ca, server, client} -> common name) at `now`.

    Returns {problems: [str], renew: [ca|server|client], not_after: {name: ISO date}}; no
    problems means the role has nothing to make. `renew` lists the certificates with less than
    `renew_before_days` left (expired ones too), which the role signs again.
    """
    problems = []  # type: List[str]
    missing = [f for f in FILES if files.get(f) is None]
    if missing:
        problems.append("missing: %s" % ", ".join(missing))
    for f in KEYS:
        if files.get(f) is not None and modes.get(f, 0) & 0o077:
            problems.append("%s is readable by others than root (mode %04o)" % (f, modes[f]))
    if files.get("tls-crypt.key") is not None and TLS_CRYPT_HEADER not in files["tls-crypt.key"]:
        problems.append("tls-crypt.key is not an OpenVPN static key")
    out = {"problems": problems, "renew": [], "not_after": {}}  # type: Dict[str, object]
    if not HAS_CRYPTOGRAPHY:  # pragma: no cover
        problems.append("python3-cryptography is not installed")
        return out
    keys = {}  # type: Dict[str, Optional[object]]
    certs = {}  # type: Dict[str, object]
    for name in CERTS:
        data = files.get(name + ".key")
        keys[name] = _load_key(name + ".key", data, problems) if data is not None else None
        data = files.get(name + ".crt")
        if data is None:
            continue
        try:
            certs[name] = x509.load_pem_x509_certificate(data)
        except ValueError:
            problems.append("%s.crt is not a PEM certificate" % name)
    ca = certs.get("ca")
    for name in CERTS:
        if name not in certs:
            continue
        _check_cert(name, certs[name], keys[name], names, ca, problems)
        not_after = _not_after(certs[name])
        out["not_after"][name] = not_after.isoformat()
        if not_after - now < datetime.timedelta(days=renew_before_days):
            out["renew"].append(name)
            problems.append("%s.crt %s on %s" % (name, "expired" if not_after <= now else "expires",
                                                 not_after.date().isoformat()))
    return out
