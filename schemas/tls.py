"""TLS for both sides: what a server presents and asks of clients, and how a client verifies.

A node and the coordinator serve HTTPS with a certificate from the consortium CA
(:mod:`schemas.pki`); with ``client_auth = "required"`` a server accepts only clients that
present a certificate signed by its CA file (mutual TLS). The coordinator verifies every
node against the consortium CA (not the system trust store) and checks the host name.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from schemas.errors import ErrorCode, FedpsyError

ClientAuth = Literal["none", "optional", "required"]
CERT_REQS: dict[str, ssl.VerifyMode] = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


def _load_chain(
    ctx: ssl.SSLContext, certfile: Path, keyfile: Path, password: str | None, what: str
) -> None:
    for path in (certfile, keyfile):
        if not path.is_file():
            raise FedpsyError(f"{what}: {path} does not exist", code=ErrorCode.TLS_INVALID)
    try:
        ctx.load_cert_chain(certfile, keyfile, password)
    except (ssl.SSLError, OSError) as exc:
        raise FedpsyError(
            f"{what}: {certfile} with key {keyfile} cannot be loaded "
            f"({exc.__class__.__name__}: {exc}); check that the key belongs to "
            "the certificate and the password is right",
            code=ErrorCode.TLS_INVALID,
        ) from None


def _load_ca(ctx: ssl.SSLContext, ca_certs: Path, what: str) -> None:
    if not ca_certs.is_file():
        raise FedpsyError(f"{what}: CA file {ca_certs} does not exist", code=ErrorCode.TLS_INVALID)
    try:
        ctx.load_verify_locations(cafile=ca_certs)
    except (ssl.SSLError, OSError) as exc:
        raise FedpsyError(
            f"{what}: CA file {ca_certs} cannot be loaded ({exc})", code=ErrorCode.TLS_INVALID
        ) from None


@dataclass(frozen=True)
class ServerTls:
    """HTTPS for a server: its certificate and key, and whether clients must present one."""

    certfile: Path
    keyfile: Path
    ca_certs: Path | None = None
    client_auth: ClientAuth = "none"
    key_password: str | None = None

    def check(self, what: str = "TLS") -> None:
        """Load everything once so that a bad file is a clear error before serving."""
        if self.client_auth != "none" and self.ca_certs is None:
            raise FedpsyError(
                f"{what}: client_auth = {self.client_auth!r} needs a CA file to "
                "verify clients (tls_ca_certs)",
                code=ErrorCode.CONFIG_INVALID,
            )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _load_chain(ctx, self.certfile, self.keyfile, self.key_password, what)
        if self.ca_certs is not None:
            _load_ca(ctx, self.ca_certs, what)

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``."""
        return {
            "ssl_certfile": str(self.certfile),
            "ssl_keyfile": str(self.keyfile),
            "ssl_keyfile_password": self.key_password,
            "ssl_ca_certs": None if self.ca_certs is None else str(self.ca_certs),
            "ssl_cert_reqs": int(CERT_REQS[self.client_auth]),
        }


def client_context(
    ca_certs: Path,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    key_password: str | None = None,
    what: str = "TLS client",
) -> ssl.SSLContext:
    """A client context trusting only ``ca_certs``, checking host names, TLS 1.2 or newer;
    presenting ``certfile``/``keyfile`` when given (for servers that require mutual TLS)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode REQUIRED, check_hostname on
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_ca(ctx, ca_certs, what)
    if certfile is not None:
        _load_chain(ctx, certfile, keyfile or certfile, key_password, what)
    return ctx


def health_context(
    ca_certs: Path | None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """A context for a local health probe: the chain is verified against ``ca_certs`` (when
    given) but not the host name (the probe connects to 127.0.0.1, which the certificate
    may not name); ``certfile`` is shown to a server that requires mutual TLS."""
    if ca_certs is not None:
        ctx = client_context(ca_certs, certfile, keyfile, key_password, "health check")
        ctx.check_hostname = False
        return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # nothing to verify against: the probe only asks /health
    if certfile is not None:
        _load_chain(ctx, certfile, keyfile or certfile, key_password, "health check")
    return ctx
