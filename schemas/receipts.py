"""Result receipts: what a site signs for every answer it releases, and what the
coordinator signs over a job's result.

A site's :class:`Receipt` binds, under the site's Ed25519 identity (the key the
coordinator pinned at ``add-node``), the site and its key fingerprint, the task and job,
the digest of the signed task request, the digest of exactly what left the site (under
secure aggregation: the masked vector), the site's dictionary and policy hashes, the
project and researcher the coordinator signed into the task, and the time. Its ``chain``
links the site's answers within one job: ``chain = sha256(prev "\\n" released_digest)``
with ``prev`` the chain of the site's previous answer in the job (the coordinator passes
it in the task; 64 zeros for the first), so the last receipt of a site stands for every
phase and round of the job, and the site's audit log, which holds the same digests, can
recompute it.

The coordinator signs :func:`result_digest` — the envelope's canonical JSON without its
``signature`` — with its own key; ``fedpsy verify`` checks both kinds of signatures.
Every digest and signature here is over canonical JSON (:func:`canonical`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from schemas.dictionary.model import sha256_hex
from schemas.keys import fingerprint

GENESIS = "0" * 64
HEX64 = r"^[0-9a-f]{64}$"


def canonical(obj: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace, UTF-8); unlike the dictionary's
    :func:`~schemas.dictionary.model.canonical_json` it keeps a NaN a result may hold."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``, lower-case hex."""
    return sha256_hex(canonical(obj))


def chained(prev: str, released_digest: str) -> str:
    """The next link of a site's receipt chain within one job."""
    return hashlib.sha256(f"{prev}\n{released_digest}".encode("ascii")).hexdigest()


def sign(key: Ed25519PrivateKey, body: dict[str, Any]) -> str:
    """base64 of the Ed25519 signature over the canonical JSON of ``body``."""
    return base64.b64encode(key.sign(canonical(body).encode("utf-8"))).decode("ascii")


def signature_valid(public_key: Ed25519PublicKey, body: dict[str, Any], signature: str) -> bool:
    """Whether ``signature`` is ``public_key``'s signature over ``body``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, canonical(body).encode("utf-8"))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


class Receipt(BaseModel):
    """A site's signed statement of one answer it released (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str
    key: str = Field(pattern=HEX64)  # fingerprint of the site's identity
    task_id: str
    job_id: str
    request_digest: str = Field(pattern=HEX64)
    released_digest: str = Field(pattern=HEX64)
    chain: str = Field(pattern=HEX64)
    dictionary_hash: str
    policy_hash: str = Field(pattern=HEX64)
    project: str | None = None
    researcher: str | None = None
    at: str
    signature: str

    def body(self) -> dict[str, Any]:
        """What the signature covers: every field but the signature."""
        return self.model_dump(mode="json", exclude={"signature"})

    def valid_for(self, public_key: Ed25519PublicKey) -> bool:
        """Whether ``public_key`` is the key named and signed this receipt."""
        return fingerprint(public_key) == self.key and signature_valid(
            public_key, self.body(), self.signature
        )


def sign_receipt(key: Ed25519PrivateKey, **fields: Any) -> Receipt:
    """A receipt of ``fields`` (all of :class:`Receipt`'s but ``key`` and ``signature``)
    signed with ``key``."""
    unsigned = Receipt(**fields, key=fingerprint(key.public_key()), signature="")
    return unsigned.model_copy(update={"signature": sign(key, unsigned.body())})


class ResultSignature(BaseModel):
    """The coordinator's signature over a job's envelope: ``fields`` maps each part of the
    envelope (``status``, ``result.<key>``, ``receipts.<site>``, …) to its digest, and
    ``value`` signs that map, so a check can name the part that was altered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=HEX64)  # fingerprint of the coordinator's key
    fields: dict[str, str]
    value: str


def part_digests(envelope: dict[str, Any]) -> dict[str, str]:
    """The digest of each part of an envelope's JSON object (without its signature):
    top-level keys, each key of ``result`` and each site's receipt on its own."""
    parts: dict[str, str] = {}
    for name, value in envelope.items():
        if name == "signature":
            continue
        if name in ("result", "receipts") and isinstance(value, dict):
            parts.update({f"{name}.{key}": digest(item) for key, item in value.items()})
        else:
            parts[name] = digest(value)
    return parts


__all__ = [
    "GENESIS",
    "Receipt",
    "ResultSignature",
    "chained",
    "digest",
    "part_digests",
    "sign",
    "sign_receipt",
    "signature_valid",
]
