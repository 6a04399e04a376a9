"""The site's receipts: every answer it releases is signed with its Ed25519 identity
(:mod:`schemas.receipts` holds the format and the checks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.audit import utc_now
from node.privacy.policy import Policy
from schemas.receipts import GENESIS, Receipt, chained, digest, sign_receipt


class ReceiptSigner:
    """Signs the receipts of one site under the policy it loaded."""

    def __init__(self, site: str, identity: Ed25519PrivateKey, policy: Policy) -> None:
        self.site = site
        self._key = identity
        self.policy_hash = digest(policy.model_dump(mode="json"))

    def sign(
        self,
        task_id: str,
        request: Mapping[str, Any],
        leaving: Mapping[str, Any],
        dictionary_hash: str,
    ) -> Receipt:
        """The receipt of ``leaving`` (exactly what left: rows and result, masked under
        secure aggregation), the answer to the signed task ``request``."""
        released = digest(dict(leaving))
        return sign_receipt(
            self._key,
            site=self.site,
            task_id=task_id,
            job_id=str(request["job_id"]),
            request_digest=digest(dict(request)),
            released_digest=released,
            chain=chained(str(request.get("chain") or GENESIS), released),
            dictionary_hash=dictionary_hash,
            policy_hash=self.policy_hash,
            project=request.get("project"),
            researcher=request.get("researcher"),
            at=utc_now(),
        )


__all__ = ["ReceiptSigner"]
