"""A node directory: what lives where, and creating a fresh one.

```
DIR/node.toml        site id, store URL, dictionary extensions (written by init)
DIR/policy.toml      the site's privacy policy (commented safe defaults)
DIR/store.sqlite     the default store (absent when a database URL is given)
DIR/dictionary/      copies of extension dictionaries given at init or ingest
DIR/keys/            the node's Ed25519 identity (private key 0600)
DIR/trusted/         coordinator public keys the node accepts
DIR/admin_token      token for the admin endpoints (0600)
DIR/.dictionary-hash.json  the dictionary's hash, for `fedpsy node status` (node.status)
DIR/columnar/        the store's data per visit as Arrow tables, for analysis (rebuilt)
```
"""

from __future__ import annotations

import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import ErrorCode, FedpsyError

SITE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class NodeDir:
    """Paths inside one node directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "node.toml"

    @property
    def policy(self) -> Path:
        return self.root / "policy.toml"

    @property
    def dictionary(self) -> Path:
        return self.root / "dictionary"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def private_key(self) -> Path:
        return self.keys / "node.key"

    @property
    def public_key(self) -> Path:
        return self.keys / "node.pub"

    @property
    def trusted(self) -> Path:
        return self.root / "trusted"

    @property
    def columnar(self) -> Path:
        return self.root / "columnar"

    @property
    def admin_token(self) -> Path:
        return self.root / "admin_token"

    def require(self) -> NodeDir:
        """This directory, or a clear error when it was never initialized."""
        if not self.config.is_file():
            raise FedpsyError(
                f"{self.root}: no node.toml here; create the node with "
                f"`fedpsy node init {self.root} --site SITE`",
                code=ErrorCode.NOT_INITIALIZED,
            )
        return self


def check_site_id(site: str) -> str:
    """A site id is lower-case letters, digits, '-' or '_' (≤ 32), starting with a letter."""
    if not SITE_PATTERN.fullmatch(site):
        raise FedpsyError(
            f"site id {site!r} is not valid: use 1-32 lower-case letters, digits, '-' or '_', "
            "starting with a letter (e.g. 'berlin')",
            code=ErrorCode.BAD_INPUT,
        )
    return site


def write_secret(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` readable by the owner only (0600)."""
    # deferred: the key code (cryptography) loads when a secret is written, not with
    # every reading of a node directory (`fedpsy node status`)
    from schemas.keys import write_secure

    write_secure(path, content.encode("utf-8"), 0o600, overwrite=True)


def new_admin_token() -> str:
    return secrets.token_urlsafe(32)


def read_toml(path: Path) -> dict[str, object]:
    """Parse a TOML file, naming the file and the position of a syntax error."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise FedpsyError(f"{path}: {exc}", code=ErrorCode.CONFIG_INVALID) from exc
