"""The receipts sites return with their answers, checked as they arrive and collected for
the envelope; the coordinator's signature over a job's envelope."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.federation.failures import SiteFailure
from schemas.envelope import Envelope
from schemas.errors import ErrorCode
from schemas.keys import fingerprint
from schemas.receipts import Receipt, ResultSignature, chained, digest, part_digests, sign
from schemas.wire import TaskOutcome, TaskRequest


def receipt_of(task: TaskRequest, outcome: TaskOutcome) -> Receipt:
    """The receipt of an answered ``task``; a missing one, or one for another task, job,
    request or answer than this one, fails the site (``tampered``)."""
    receipt = outcome.receipt
    if receipt is None:
        raise SiteFailure(ErrorCode.TAMPERED, "the site answered without a signed receipt")
    released = digest({"rows": outcome.rows, "result": outcome.result})
    expected = {
        "task_id": task.task_id,
        "job_id": task.job_id,
        "request_digest": digest(task.model_dump(mode="json")),
        "released_digest": released,
        "chain": chained(task.chain, released),
        "site": outcome.site,
    }
    wrong = [name for name, value in expected.items() if getattr(receipt, name) != value]
    if wrong:
        raise SiteFailure(
            ErrorCode.TAMPERED, f"the site's receipt does not match its answer ({', '.join(wrong)})"
        )
    return receipt


def sign_envelope(key: Ed25519PrivateKey, envelope: Envelope) -> Envelope:
    """``envelope`` with the coordinator's signature over its result and receipts."""
    fields = part_digests(envelope.to_dict())
    signature = ResultSignature(
        key=fingerprint(key.public_key()), fields=fields, value=sign(key, fields)
    )
    return envelope.model_copy(update={"signature": signature})


__all__ = ["receipt_of", "sign_envelope"]
