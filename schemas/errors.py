"""The one exception hierarchy of fedpsy, with stable codes and public messages.

Every error that can reach a user carries a ``code`` (stable, machine-readable), a
public ``message`` (safe to show anyone: it never contains a protected value) and an
optional ``detail`` (what to fix). ``CATALOG`` maps each code to its public message and
its exit status / HTTP status, so the CLI and both APIs map errors the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


@dataclass(frozen=True)
class ErrorKind:
    """The public face of one error code."""

    message: str
    exit_code: int
    http_status: int


CATALOG: dict[str, ErrorKind] = {
    # bad input (exit 2, HTTP 422/400)
    "bad_input": ErrorKind("The input is not valid.", EXIT_BAD_INPUT, 422),
    "dictionary_invalid": ErrorKind("A data dictionary file is not valid.", EXIT_BAD_INPUT, 422),
    "dictionary_clash": ErrorKind(
        "An extension dictionary redefines an existing variable.", EXIT_BAD_INPUT, 422
    ),
    "ingest_invalid": ErrorKind(
        "The file was rejected; the store is unchanged.", EXIT_BAD_INPUT, 422
    ),
    "mapping_invalid": ErrorKind("The mapping file is not valid.", EXIT_BAD_INPUT, 422),
    "unknown_variable": ErrorKind(
        "The request names a variable that is not defined.", EXIT_BAD_INPUT, 422
    ),
    "request_invalid": ErrorKind("The analysis request is not valid.", EXIT_BAD_INPUT, 422),
    "not_initialized": ErrorKind(
        "The directory is not an initialized fedpsy directory.", EXIT_BAD_INPUT, 400
    ),
    "already_initialized": ErrorKind("The directory is already initialized.", EXIT_BAD_INPUT, 409),
    "config_invalid": ErrorKind("The configuration is not valid.", EXIT_BAD_INPUT, 400),
    "not_estimable": ErrorKind(
        "The model cannot be estimated from the rows it was given.", EXIT_BAD_INPUT, 422
    ),
    "key_invalid": ErrorKind("A key is not a valid Ed25519 key.", EXIT_BAD_INPUT, 400),
    "derived_unsupported": ErrorKind("This node cannot keep derived values.", EXIT_BAD_INPUT, 422),
    # refused by a privacy policy (exit 3, HTTP 403)
    "refused": ErrorKind("The request was refused by a site's privacy policy.", EXIT_REFUSED, 403),
    "cohort_too_small": ErrorKind(
        "The cohort is smaller than the site's minimum.", EXIT_REFUSED, 403
    ),
    "cell_too_small": ErrorKind(
        "A cell is smaller than the site's minimum cell size.", EXIT_REFUSED, 403
    ),
    "model_too_small": ErrorKind(
        "Too few rows for a model under the site's policy.", EXIT_REFUSED, 403
    ),
    "too_many_parameters": ErrorKind(
        "The model has too many parameters for the rows.", EXIT_REFUSED, 403
    ),
    "too_many_categories": ErrorKind(
        "A variable has more categories than the policy allows.", EXIT_REFUSED, 403
    ),
    "analysis_not_allowed": ErrorKind(
        "The site's policy does not allow this analysis.", EXIT_REFUSED, 403
    ),
    "differencing": ErrorKind(
        "The cohort differs from an earlier answered cohort by fewer than the minimum size.",
        EXIT_REFUSED,
        403,
    ),
    "split_too_small": ErrorKind(
        "A held-out training split is smaller than the site's minimum.", EXIT_REFUSED, 403
    ),
    "dominance": ErrorKind(
        "One or two persons' values dominate a sum (p%-rule).", EXIT_REFUSED, 403
    ),
    "column_too_thin": ErrorKind(
        "A design column sets apart fewer rows than the site's minimum cell size.",
        EXIT_REFUSED,
        403,
    ),
    "leverage_too_high": ErrorKind(
        "A row's leverage in the model exceeds the site's maximum.", EXIT_REFUSED, 403
    ),
    "approval_rejected": ErrorKind("The site rejected the request.", EXIT_REFUSED, 403),
    "app_not_approved": ErrorKind(
        "The site has not approved this training app.", EXIT_REFUSED, 403
    ),
    "dictionary_mismatch": ErrorKind(
        "Variables are defined differently at the sites taking part.", EXIT_REFUSED, 409
    ),
    "secure_aggregation_required": ErrorKind(
        "The site answers additive steps only through secure aggregation.", EXIT_REFUSED, 403
    ),
    "dp_budget_exhausted": ErrorKind(
        "The site's differential privacy budget is spent.", EXIT_REFUSED, 403
    ),
    "dp_unsupported": ErrorKind(
        "The site adds differential privacy noise and cannot do so for this step.",
        EXIT_REFUSED,
        403,
    ),
    # authentication (HTTP 401)
    "unsigned": ErrorKind("The request is not signed.", EXIT_ERROR, 401),
    "bad_signature": ErrorKind("The request signature does not verify.", EXIT_ERROR, 401),
    "unknown_key": ErrorKind(
        "The request is signed by a key this node does not trust.", EXIT_ERROR, 401
    ),
    "expired": ErrorKind("The request timestamp is outside the accepted window.", EXIT_ERROR, 401),
    "replayed": ErrorKind("The request nonce was already used.", EXIT_ERROR, 401),
    "tampered": ErrorKind("The request body does not match its signed digest.", EXIT_ERROR, 401),
    "unauthorized": ErrorKind("A valid token is required.", EXIT_ERROR, 401),
    # operational (exit 1)
    "not_found": ErrorKind("Not found.", EXIT_ERROR, 404),
    "site_unreachable": ErrorKind("A site could not be reached.", EXIT_ERROR, 502),
    "site_timeout": ErrorKind("A site did not answer in time.", EXIT_ERROR, 504),
    "quorum_not_met": ErrorKind(
        "Too few sites answered for the job's quorum (min_sites).", EXIT_ERROR, 503
    ),
    "job_interrupted": ErrorKind(
        "The job was interrupted by a coordinator restart; submit it again.", EXIT_ERROR, 503
    ),
    "tls_required": ErrorKind("Plain HTTP is refused: TLS is configured.", EXIT_ERROR, 400),
    "tls_invalid": ErrorKind("A TLS certificate or key is not valid.", EXIT_BAD_INPUT, 400),
    "not_converged": ErrorKind("The computation did not converge.", EXIT_ERROR, 422),
    "training_failed": ErrorKind("A training round failed or came back empty.", EXIT_ERROR, 500),
    "superlink_error": ErrorKind(
        "The Flower SuperLink could not be reached or did not do what was asked.", EXIT_ERROR, 502
    ),
    "store_error": ErrorKind("The data store failed.", EXIT_ERROR, 500),
    "secure_aggregation_failed": ErrorKind(
        "Secure aggregation could not complete.", EXIT_ERROR, 409
    ),
    "peer_key_mismatch": ErrorKind(
        "A relayed secure aggregation key does not belong to the site it names.", EXIT_ERROR, 409
    ),
    "internal": ErrorKind("An internal error occurred.", EXIT_ERROR, 500),
}


class FedpsyError(Exception):
    """Base of every fedpsy error. ``code`` must be a key of :data:`CATALOG`."""

    code: str = "internal"

    def __init__(
        self, detail: str = "", *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        if code is not None:
            self.code = code
        if self.code not in CATALOG:
            raise ValueError(f"unknown error code {self.code!r}")
        self.detail = detail
        self.extra = extra or {}
        super().__init__(f"{self.message}{' ' + detail if detail else ''}")

    @property
    def message(self) -> str:
        return CATALOG[self.code].message

    @property
    def exit_code(self) -> int:
        return CATALOG[self.code].exit_code

    @property
    def http_status(self) -> int:
        return CATALOG[self.code].http_status

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """An RFC 9457 problem body for this error."""
        body: dict[str, Any] = {
            "type": f"urn:fedpsy:error:{self.code}",
            "title": self.message,
            "status": self.http_status,
            "code": self.code,
            "detail": self.detail or self.message,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadInput(FedpsyError):
    code = "bad_input"


class DictionaryError(FedpsyError):
    code = "dictionary_invalid"


class Refused(FedpsyError):
    code = "refused"


class AuthError(FedpsyError):
    code = "unsigned"
