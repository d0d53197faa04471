# SPDX-License-Identifier: GPL-3.0-or-later
"""Certificates for the TLS tests, made with the cryptography library: a CA and the leaves it signs."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()  # fmt: skip

    def write(self, folder: Path, name: str) -> tuple:
        """(certificate path, key path) in ``folder``."""
        cert, key = folder / f"{name}.crt", folder / f"{name}.key"
        cert.write_text(self.pem)
        key.write_text(self.key_pem)
        return cert, key


def issue(common_name: str, not_before: datetime.datetime, not_after: datetime.datetime,
          ca: Issued | None = None, dns_names: tuple = ()) -> Issued:  # fmt: skip
    """A certificate for ``common_name`` (a CA when ``ca`` is None, else a server certificate it signs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after))  # fmt: skip
    if ca is None:
        builder = builder.issuer_name(subject).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                      key_encipherment=False, data_encipherment=False,
                                                      key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                      encipher_only=False, decipher_only=False), True)  # fmt: skip
        return Issued(builder.sign(key, hashes.SHA256()), key)
    builder = builder.issuer_name(ca.certificate.subject)
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names or (common_name,)]),
                                    False)  # fmt: skip
    builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)
