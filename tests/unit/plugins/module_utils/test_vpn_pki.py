"""Whether the VPN's PKI is complete (plugins/module_utils/_vpn_pki.py, module vpn_pki_info).

The PKIs here are made with cryptography the way the role's community.crypto tasks make them
(secp384r1 keys, the same names, constraints and uses); the lab's molecule vps scenario checks
the module against the PKI community.crypto really made.
"""
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.omr.deploy.plugins.module_utils._vpn_pki import check_pki

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
NAMES = {"ca": "omr.deploy VPN CA vps1", "server": "vps1", "client": "openmptcprouter"}
TLS_CRYPT = b"#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n00\n" \
            b"-----END OpenVPN Static key V1-----\n"


def _key(curve=None):
    return ec.generate_private_key(curve or ec.SECP384R1())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(name, cn, key, issuer_cert, issuer_key, days):
    ca = name == "ca"
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(issuer_cert.subject if issuer_cert is not None
                            else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1))
               .not_valid_after(NOW + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if name == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(days=3650, names=None):
    """(files, modes, keys) of a PKI as the role makes it."""
    names = names or NAMES
    keys = {n: _key() for n in ("ca", "server", "client")}
    ca = _cert("ca", names["ca"], keys["ca"], None, keys["ca"], days * 10)
    certs = {"ca": ca}
    for n in ("server", "client"):
        certs[n] = _cert(n, names[n], keys[n], ca, keys["ca"], days)
    files = {n + ".key": _pem_key(k) for n, k in keys.items()}
    files.update({n + ".crt": c.public_bytes(serialization.Encoding.PEM) for n, c in certs.items()})
    files["tls-crypt.key"] = TLS_CRYPT
    modes = {n: 0o600 if n.endswith(".key") else 0o644 for n in files}
    return files, modes, keys


def check(files, modes, renew=30):
    return check_pki(files, modes, NAMES, NOW, renew)


def test_a_complete_pki_has_nothing_to_make():
    files, modes = make_pki()[:2]
    state = check(files, modes)
    assert state["problems"] == [] and state["renew"] == []
    assert state["not_after"]["server"].startswith("2036-12-03")
    assert state["not_after"]["ca"].startswith("2126-")


def test_a_fresh_host_lacks_every_file():
    state = check({}, {})
    assert state["problems"] == ["missing: ca.key, ca.crt, server.key, server.crt, client.key, client.crt, "
                                 "tls-crypt.key"]


def test_a_lost_client_certificate_is_named():
    files, modes = make_pki()[:2]
    files["client.crt"] = None
    assert check(files, modes)["problems"] == ["missing: client.crt"]


def test_a_key_others_can_read_is_a_problem():
    files, modes = make_pki()[:2]
    modes["client.key"] = 0o644
    assert check(files, modes)["problems"] == ["client.key is readable by others than root (mode 0644)"]


def test_a_certificate_from_another_ca_is_not_accepted():
    files, modes = make_pki()[:2]
    other = make_pki()[0]
    files["client.crt"] = other["client.crt"]
    assert check(files, modes)["problems"] == ["client.crt does not match client.key",
                                               "client.crt is not signed by ca.crt"]


def test_a_ca_signed_by_another_key_is_not_self_signed():
    files, modes, keys = make_pki()
    stranger = _key()
    ca = _cert("ca", NAMES["ca"], keys["ca"], None, stranger, 36500)
    files["ca.crt"] = ca.public_bytes(serialization.Encoding.PEM)
    problems = check(files, modes)["problems"]
    assert "ca.crt is not signed by itself" in problems
    # The server's and client's certificates were signed by the CA key, which still matches.
    assert not [p for p in problems if p.startswith(("server", "client"))]


def test_swapped_certificates_are_wrong_names_and_uses():
    files, modes = make_pki()[:2]
    files["server.crt"], files["client.crt"] = files["client.crt"], files["server.crt"]
    problems = check(files, modes)["problems"]
    assert "server.crt is for 'openmptcprouter', not 'vps1'" in problems
    assert "server.crt is not for server authentication" in problems
    assert "client.crt is not for client authentication" in problems


def test_a_renamed_vps_makes_a_new_server_certificate():
    files, modes = make_pki(names=dict(NAMES, server="old-name"))[:2]
    assert check(files, modes)["problems"] == ["server.crt is for 'old-name', not 'vps1'"]


def test_certificates_due_are_renewed_and_expired_ones_too():
    files, modes = make_pki(days=20)[:2]
    state = check(files, modes)
    assert state["renew"] == ["server", "client"]
    assert state["problems"] == ["server.crt expires on 2026-12-26", "client.crt expires on 2026-12-26"]
    assert check(files, modes, renew=0)["problems"] == []
    expired = check_pki(files, modes, NAMES, NOW + datetime.timedelta(days=21), 0)
    assert expired["problems"] == ["server.crt expired on 2026-12-26", "client.crt expired on 2026-12-26"]


@pytest.mark.parametrize("change, problem", [
    ({"server.key": b"not a key"}, "server.key is not a PEM private key without a passphrase"),
    ({"client.crt": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
     "client.crt is not a PEM certificate"),
    ({"tls-crypt.key": b"secret\n"}, "tls-crypt.key is not an OpenVPN static key"),
])
def test_unreadable_files_are_named(change, problem):
    files, modes = make_pki()[:2]
    files.update(change)
    assert problem in check(files, modes)["problems"]


def test_a_key_on_another_curve_is_not_what_the_role_makes():
    files, modes = make_pki()[:2]
    files["server.key"] = _pem_key(_key(ec.SECP256R1()))
    assert check(files, modes)["problems"] == ["server.key is not a secp384r1 EC key"]
