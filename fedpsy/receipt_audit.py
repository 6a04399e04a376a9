"""``fedpsy node audit DIR --receipt RESULT.json``: does the receipt with this site's name
match the site's own audit log?"""

from __future__ import annotations

from pathlib import Path

from fedpsy.trusted_keys import read_result
from node.audit import AuditLog
from node.site import NodeSite
from schemas.errors import ErrorCode, FedpsyError
from schemas.receipts import GENESIS, Receipt, chained


def _mismatch(what: str) -> FedpsyError:
    return FedpsyError(what, code=ErrorCode.RESULT_ALTERED)


def check_receipt(node: NodeSite, result: Path) -> str:
    """A one-line confirmation, or ``result_altered`` saying what differs from the log."""
    site = node.config.site
    receipts = read_result(result).get("receipts") or {}
    if site not in receipts:
        raise _mismatch(f"{result}: no receipt of site {site}")
    receipt = Receipt.model_validate(receipts[site])
    log = AuditLog(node.engine)
    report = log.verify()
    if not report.ok:
        raise _mismatch(f"the audit log itself is broken: {report.reason}")
    released = [
        e
        for e in log.entries()
        if e.kind == "released"
        and isinstance(e.payload.get("receipt"), dict)
        and e.payload["receipt"].get("job_id") == receipt.job_id
    ]
    chain = GENESIS
    for count, entry in enumerate(released, start=1):
        logged = Receipt.model_validate(entry.payload["receipt"])
        chain = chained(chain, logged.released_digest)
        if logged.chain != chain:
            raise _mismatch(f"audit entry {entry.seq}: its receipt breaks the job's chain")
        if logged.task_id != receipt.task_id:
            continue
        differ = [
            name
            for name, value in receipt.model_dump().items()
            if logged.model_dump()[name] != value
        ]
        if differ:
            raise _mismatch(
                f"receipts.{site}: differs from audit entry {entry.seq} in {', '.join(differ)}"
            )
        return (
            f"receipt of {site} for job {receipt.job_id} matches audit entry {entry.seq} "
            f"({count} answer(s) in the job, chain intact)"
        )
    raise _mismatch(
        f"receipts.{site}: task {receipt.task_id} of job {receipt.job_id} is not in this "
        "site's audit log"
    )


__all__ = ["check_receipt"]
