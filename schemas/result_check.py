"""Checking a result envelope against its signatures: every site's receipt under the key
pinned for that site, and the coordinator's signature over the whole.

:func:`check_result` names the first place that is wrong (``result_altered``): a receipt
missing for a site that answered, one signed by another key than the site's, one whose
signature does not verify, one of another job; a coordinator signature by another key
than the coordinator's, or not over these parts; and any part of the envelope (a result
key, a site's rows, the privacy, a receipt) that differs from what the coordinator signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from schemas.envelope import Envelope
from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import fingerprint
from schemas.receipts import part_digests, signature_valid


@dataclass(frozen=True)
class TrustedKeys:
    """The coordinator's public key and the keys pinned for each site."""

    coordinator: Ed25519PublicKey
    sites: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)


def _altered(place: str, what: str) -> FedpsyError:
    return FedpsyError(f"{place}: {what}", code=ErrorCode.RESULT_ALTERED, extra={"place": place})


def check_result(data: Mapping[str, Any], keys: TrustedKeys) -> str:
    """A one-line summary of a valid result; raises ``result_altered`` naming the place."""
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        raise FedpsyError(
            f"not a result envelope: {exc.errors()[0]['msg']}", code=ErrorCode.BAD_INPUT
        ) from None
    signature = envelope.signature
    if signature is None:
        raise _altered("signature", "the result carries no coordinator signature")
    expected = fingerprint(keys.coordinator)
    if signature.key != expected:
        raise _altered(
            "signature",
            f"made with key {signature.key[:16]}…, not the coordinator's {expected[:16]}…",
        )
    if not signature_valid(keys.coordinator, signature.fields, signature.value):
        raise _altered("signature", "the coordinator's signature does not verify")
    receipts = envelope.receipts or {}
    for site in envelope.sites:
        if site not in receipts:
            raise _altered(f"receipts.{site}", f"no receipt from site {site}, which answered")
    for site, receipt in receipts.items():
        place = f"receipts.{site}"
        pinned = keys.sites.get(site)
        if pinned is None:
            raise _altered(place, f"no key is pinned for site {site}")
        if receipt.site != site or receipt.key != fingerprint(pinned):
            raise _altered(place, f"not signed with the key pinned for site {site}")
        if not receipt.valid_for(pinned):
            raise _altered(place, f"the signature of site {site} does not verify")
        if receipt.job_id != envelope.request_id:
            raise _altered(
                place, f"a receipt of job {receipt.job_id}, not of this job {envelope.request_id}"
            )
    found = part_digests(envelope.to_dict())
    for part in sorted(set(found) | set(signature.fields)):
        if part not in found:
            raise _altered(part, "removed after the coordinator signed the result")
        if part not in signature.fields:
            raise _altered(part, "added after the coordinator signed the result")
        if found[part] != signature.fields[part]:
            raise _altered(part, "altered after the coordinator signed the result")
    sites = ", ".join(f"{s} (n={envelope.sites[s].n})" for s in envelope.sites) or "none"
    return (
        f"valid: {envelope.analysis} job {envelope.request_id}, {envelope.status}; "
        f"receipts of {len(receipts)} site(s): {sites}; signed by the coordinator "
        f"{expected[:16]}…"
    )


__all__ = ["TrustedKeys", "check_result"]
