"""A consortium's certificate authority and the TLS certificates it issues (X.509).

One CA per consortium (``ca.pem`` and its key ``ca.key``, 0600) signs a certificate for each
node and for the coordinator. Every certificate names its hosts as subject alternative
names (DNS names and IP addresses, RFC 5280 §4.2.1.6) and is good for both TLS server and
TLS client authentication, so the coordinator's certificate also serves as its client
certificate towards nodes that require mutual TLS. Keys are ECDSA P-256.

```
PKI_DIR/ca.pem        the consortium CA certificate: give it to every site and the coordinator
PKI_DIR/ca.key        the CA's private key (0600): keep it offline
PKI_DIR/NAME.pem      a host's certificate
PKI_DIR/NAME.key      its private key (0600): copy it only to that host
```
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import write_secure

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DNS_PATTERN = re.compile(
    r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


@dataclass(frozen=True)
class Issued:
    """A certificate written to disk: where, for whom, until when."""

    cert: Path
    key: Path
    subject: str
    fingerprint: str  # SHA-256 of the DER certificate, hex
    not_after: datetime
    names: tuple[str, ...] = ()


def _write(path: Path, content: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` set before any byte is written; never overwrite."""
    write_secure(path, content, mode, exists_code=ErrorCode.ALREADY_INITIALIZED)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issued(
    cert: x509.Certificate, cert_path: Path, key_path: Path, names: tuple[str, ...]
) -> Issued:
    return Issued(
        cert=cert_path,
        key=key_path,
        subject=cert.subject.rfc4514_string(),
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        not_after=cert.not_valid_after_utc,
        names=names,
    )


def init_ca(directory: Path, common_name: str = "fedpsy consortium CA", days: int = 3650) -> Issued:
    """Create the consortium CA in ``directory`` (``ca.pem`` and ``ca.key``, 0600)."""
    if (directory / CA_KEY).exists() or (directory / CA_CERT).exists():
        raise FedpsyError(
            f"{directory} already holds a CA ({CA_CERT}/{CA_KEY}); issue "
            "certificates with it or choose another directory",
            code=ErrorCode.ALREADY_INITIALIZED,
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedpsy consortium"),
        ]
    )
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY, _key_pem(key), PRIVATE_MODE)
    _write(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return _issued(cert, directory / CA_CERT, directory / CA_KEY, ())


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA certificate and key in ``directory``, or a clear error."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.is_file() or not key_path.is_file():
        raise FedpsyError(
            f"{directory}: no CA here ({CA_CERT} and {CA_KEY}); create one with "
            f"`fedpsy pki init {directory}`",
            code=ErrorCode.NOT_INITIALIZED,
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as exc:
        raise FedpsyError(
            f"{directory}: the CA files do not parse: {exc}", code=ErrorCode.TLS_INVALID
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FedpsyError(f"{key_path}: not an EC private key", code=ErrorCode.TLS_INVALID)
    return cert, key


def alternative_names(dns: Sequence[str], ips: Sequence[str]) -> list[x509.GeneralName]:
    """Validated subject alternative names (DNS names first, then IP addresses)."""
    names: list[x509.GeneralName] = []
    for host in dns:
        if not DNS_PATTERN.fullmatch(host) or len(host) > 253:
            raise FedpsyError(
                f"--dns {host!r} is not a DNS name (letters, digits, '-' and "
                "dots, e.g. node.berlin.example)",
                code=ErrorCode.BAD_INPUT,
            )
        names.append(x509.DNSName(host.lower()))
    for ip in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise FedpsyError(
                f"--ip {ip!r} is not an IP address (e.g. 10.0.0.5 or ::1)", code=ErrorCode.BAD_INPUT
            ) from None
    return names


def issue_certificate(
    directory: Path, name: str, dns: Sequence[str] = (), ips: Sequence[str] = (), days: int = 825
) -> Issued:
    """Issue ``NAME.pem``/``NAME.key`` signed by the CA in ``directory``.

    The certificate names ``dns`` and ``ips`` as its hosts (``name`` alone when both are
    empty) and allows TLS server and client authentication.
    """
    if not NAME_PATTERN.fullmatch(name) or name == "ca":
        raise FedpsyError(
            f"--name {name!r} is not valid: use letters, digits, '.', '-' or "
            "'_' (not 'ca'), e.g. the site id",
            code=ErrorCode.BAD_INPUT,
        )
    if days < 1:
        raise FedpsyError("--days must be at least 1", code=ErrorCode.BAD_INPUT)
    ca_cert, ca_key = load_ca(directory)
    sans = alternative_names(dns if dns or ips else [name], ips)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    if cert_path.exists() or key_path.exists():
        raise FedpsyError(
            f"{cert_path} or {key_path} already exists; move them away to re-issue",
            code=ErrorCode.ALREADY_INITIALIZED,
        )
    _write(key_path, _key_pem(key), PRIVATE_MODE)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    shown = tuple(str(n.value) for n in sans)
    return _issued(cert, cert_path, key_path, shown)
