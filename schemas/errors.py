"""The one exception hierarchy of fedpsy, with stable codes and public messages.

Every error that can reach a user carries a ``code`` (stable, machine-readable), a
public ``message`` (safe to show anyone: it never contains a protected value) and an
optional ``detail`` (what to fix). ``CATALOG`` maps each code to its public message and
its exit status / HTTP status, so the CLI and both APIs map errors the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
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


class ErrorCode(StrEnum):
    """Every error code fedpsy gives, stable and machine-readable (documented in
    ``docs/ERRORS.md``). A member equals its string value."""

    BAD_INPUT = "bad_input"
    DICTIONARY_INVALID = "dictionary_invalid"
    DICTIONARY_CLASH = "dictionary_clash"
    INGEST_INVALID = "ingest_invalid"
    MAPPING_INVALID = "mapping_invalid"
    UNKNOWN_VARIABLE = "unknown_variable"
    REQUEST_INVALID = "request_invalid"
    FORBIDDEN = "forbidden"
    NOT_INITIALIZED = "not_initialized"
    ALREADY_INITIALIZED = "already_initialized"
    CONFIG_INVALID = "config_invalid"
    NOT_ESTIMABLE = "not_estimable"
    KEY_INVALID = "key_invalid"
    DERIVED_UNSUPPORTED = "derived_unsupported"
    REFUSED = "refused"
    COHORT_TOO_SMALL = "cohort_too_small"
    CELL_TOO_SMALL = "cell_too_small"
    MODEL_TOO_SMALL = "model_too_small"
    TOO_MANY_PARAMETERS = "too_many_parameters"
    TOO_MANY_CATEGORIES = "too_many_categories"
    ANALYSIS_NOT_ALLOWED = "analysis_not_allowed"
    DIFFERENCING = "differencing"
    COHORT_ON_RELEASED = "cohort_on_released"
    SPLIT_TOO_SMALL = "split_too_small"
    DOMINANCE = "dominance"
    COLUMN_TOO_THIN = "column_too_thin"
    LEVERAGE_TOO_HIGH = "leverage_too_high"
    APPROVAL_REJECTED = "approval_rejected"
    APP_NOT_APPROVED = "app_not_approved"
    PROJECT_NOT_APPROVED = "project_not_approved"
    DICTIONARY_MISMATCH = "dictionary_mismatch"
    SECURE_AGGREGATION_REQUIRED = "secure_aggregation_required"
    DP_BUDGET_EXHAUSTED = "dp_budget_exhausted"
    DP_UNSUPPORTED = "dp_unsupported"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    TAMPERED = "tampered"
    RESULT_ALTERED = "result_altered"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    SITE_UNREACHABLE = "site_unreachable"
    COORDINATOR_UNREACHABLE = "coordinator_unreachable"
    SITE_TIMEOUT = "site_timeout"
    QUORUM_NOT_MET = "quorum_not_met"
    JOB_INTERRUPTED = "job_interrupted"
    TLS_REQUIRED = "tls_required"
    TLS_INVALID = "tls_invalid"
    NOT_CONVERGED = "not_converged"
    TRAINING_FAILED = "training_failed"
    SUPERLINK_ERROR = "superlink_error"
    STORE_ERROR = "store_error"
    SECURE_AGGREGATION_FAILED = "secure_aggregation_failed"
    PEER_KEY_MISMATCH = "peer_key_mismatch"
    INTERNAL = "internal"


CATALOG: dict[ErrorCode, ErrorKind] = {
    # bad input (exit 2, HTTP 422/400)
    ErrorCode.BAD_INPUT: ErrorKind("The input is not valid.", EXIT_BAD_INPUT, 422),
    ErrorCode.DICTIONARY_INVALID: ErrorKind(
        "A data dictionary file is not valid.", EXIT_BAD_INPUT, 422
    ),
    ErrorCode.DICTIONARY_CLASH: ErrorKind(
        "An extension dictionary redefines an existing variable.", EXIT_BAD_INPUT, 422
    ),
    ErrorCode.INGEST_INVALID: ErrorKind(
        "The file was rejected; the store is unchanged.", EXIT_BAD_INPUT, 422
    ),
    ErrorCode.MAPPING_INVALID: ErrorKind("The mapping file is not valid.", EXIT_BAD_INPUT, 422),
    ErrorCode.UNKNOWN_VARIABLE: ErrorKind(
        "The request names a variable that is not defined.", EXIT_BAD_INPUT, 422
    ),
    ErrorCode.REQUEST_INVALID: ErrorKind("The analysis request is not valid.", EXIT_BAD_INPUT, 422),
    ErrorCode.FORBIDDEN: ErrorKind(
        "The request is outside what the researcher's project allows.", EXIT_BAD_INPUT, 403
    ),
    ErrorCode.NOT_INITIALIZED: ErrorKind(
        "The directory is not an initialized fedpsy directory.", EXIT_BAD_INPUT, 400
    ),
    ErrorCode.ALREADY_INITIALIZED: ErrorKind(
        "The directory is already initialized.", EXIT_BAD_INPUT, 409
    ),
    ErrorCode.CONFIG_INVALID: ErrorKind("The configuration is not valid.", EXIT_BAD_INPUT, 400),
    ErrorCode.NOT_ESTIMABLE: ErrorKind(
        "The model cannot be estimated from the rows it was given.", EXIT_BAD_INPUT, 422
    ),
    ErrorCode.KEY_INVALID: ErrorKind("A key is not a valid Ed25519 key.", EXIT_BAD_INPUT, 400),
    ErrorCode.DERIVED_UNSUPPORTED: ErrorKind(
        "This node cannot keep derived values.", EXIT_BAD_INPUT, 422
    ),
    # refused by a privacy policy (exit 3, HTTP 403)
    ErrorCode.REFUSED: ErrorKind(
        "The request was refused by a site's privacy policy.", EXIT_REFUSED, 403
    ),
    ErrorCode.COHORT_TOO_SMALL: ErrorKind(
        "The cohort is smaller than the site's minimum.", EXIT_REFUSED, 403
    ),
    ErrorCode.CELL_TOO_SMALL: ErrorKind(
        "A cell is smaller than the site's minimum cell size.", EXIT_REFUSED, 403
    ),
    ErrorCode.MODEL_TOO_SMALL: ErrorKind(
        "Too few rows for a model under the site's policy.", EXIT_REFUSED, 403
    ),
    ErrorCode.TOO_MANY_PARAMETERS: ErrorKind(
        "The model has too many parameters for the rows.", EXIT_REFUSED, 403
    ),
    ErrorCode.TOO_MANY_CATEGORIES: ErrorKind(
        "A variable has more categories than the policy allows.", EXIT_REFUSED, 403
    ),
    ErrorCode.ANALYSIS_NOT_ALLOWED: ErrorKind(
        "The site's policy does not allow this analysis.", EXIT_REFUSED, 403
    ),
    ErrorCode.DIFFERENCING: ErrorKind(
        "The cohort differs from an earlier answered cohort by fewer than the minimum size.",
        EXIT_REFUSED,
        403,
    ),
    ErrorCode.COHORT_ON_RELEASED: ErrorKind(
        "The cohort tests a variable whose values the request releases.", EXIT_REFUSED, 403
    ),
    ErrorCode.SPLIT_TOO_SMALL: ErrorKind(
        "A held-out training split is smaller than the site's minimum.", EXIT_REFUSED, 403
    ),
    ErrorCode.DOMINANCE: ErrorKind(
        "One or two persons' values dominate a sum (p%-rule).", EXIT_REFUSED, 403
    ),
    ErrorCode.COLUMN_TOO_THIN: ErrorKind(
        "A design column sets apart fewer rows than the site's minimum cell size.",
        EXIT_REFUSED,
        403,
    ),
    ErrorCode.LEVERAGE_TOO_HIGH: ErrorKind(
        "A row's leverage in the model exceeds the site's maximum.", EXIT_REFUSED, 403
    ),
    ErrorCode.APPROVAL_REJECTED: ErrorKind("The site rejected the request.", EXIT_REFUSED, 403),
    ErrorCode.APP_NOT_APPROVED: ErrorKind(
        "The site has not approved this training app.", EXIT_REFUSED, 403
    ),
    ErrorCode.PROJECT_NOT_APPROVED: ErrorKind(
        "The site has not approved this project.", EXIT_REFUSED, 403
    ),
    ErrorCode.DICTIONARY_MISMATCH: ErrorKind(
        "Variables are defined differently at the sites taking part.", EXIT_REFUSED, 409
    ),
    ErrorCode.SECURE_AGGREGATION_REQUIRED: ErrorKind(
        "The site answers additive steps only through secure aggregation.", EXIT_REFUSED, 403
    ),
    ErrorCode.DP_BUDGET_EXHAUSTED: ErrorKind(
        "The site's differential privacy budget is spent.", EXIT_REFUSED, 403
    ),
    ErrorCode.DP_UNSUPPORTED: ErrorKind(
        "The site adds differential privacy noise and cannot do so for this step.",
        EXIT_REFUSED,
        403,
    ),
    # authentication (HTTP 401)
    ErrorCode.UNSIGNED: ErrorKind("The request is not signed.", EXIT_ERROR, 401),
    ErrorCode.BAD_SIGNATURE: ErrorKind("The request signature does not verify.", EXIT_ERROR, 401),
    ErrorCode.UNKNOWN_KEY: ErrorKind(
        "The request is signed by a key this node does not trust.", EXIT_ERROR, 401
    ),
    ErrorCode.EXPIRED: ErrorKind(
        "The request timestamp is outside the accepted window.", EXIT_ERROR, 401
    ),
    ErrorCode.REPLAYED: ErrorKind("The request nonce was already used.", EXIT_ERROR, 401),
    ErrorCode.TAMPERED: ErrorKind(
        "The request body does not match its signed digest.", EXIT_ERROR, 401
    ),
    ErrorCode.UNAUTHORIZED: ErrorKind("A valid token is required.", EXIT_ERROR, 401),
    ErrorCode.RESULT_ALTERED: ErrorKind(
        "The result does not match its signed receipts.", EXIT_ERROR, 422
    ),
    # operational (exit 1)
    ErrorCode.NOT_FOUND: ErrorKind("Not found.", EXIT_ERROR, 404),
    ErrorCode.SITE_UNREACHABLE: ErrorKind("A site could not be reached.", EXIT_ERROR, 502),
    ErrorCode.COORDINATOR_UNREACHABLE: ErrorKind(
        "The coordinator could not be reached.", EXIT_ERROR, 502
    ),
    ErrorCode.SITE_TIMEOUT: ErrorKind("A site did not answer in time.", EXIT_ERROR, 504),
    ErrorCode.QUORUM_NOT_MET: ErrorKind(
        "Too few sites answered for the job's quorum (min_sites).", EXIT_ERROR, 503
    ),
    ErrorCode.JOB_INTERRUPTED: ErrorKind(
        "The job was interrupted by a coordinator restart; submit it again.", EXIT_ERROR, 503
    ),
    ErrorCode.TLS_REQUIRED: ErrorKind("Plain HTTP is refused: TLS is configured.", EXIT_ERROR, 400),
    ErrorCode.TLS_INVALID: ErrorKind("A TLS certificate or key is not valid.", EXIT_BAD_INPUT, 400),
    ErrorCode.NOT_CONVERGED: ErrorKind("The computation did not converge.", EXIT_ERROR, 422),
    ErrorCode.TRAINING_FAILED: ErrorKind(
        "A training round failed or came back empty.", EXIT_ERROR, 500
    ),
    ErrorCode.SUPERLINK_ERROR: ErrorKind(
        "The Flower SuperLink could not be reached or did not do what was asked.", EXIT_ERROR, 502
    ),
    ErrorCode.STORE_ERROR: ErrorKind("The data store failed.", EXIT_ERROR, 500),
    ErrorCode.SECURE_AGGREGATION_FAILED: ErrorKind(
        "Secure aggregation could not complete.", EXIT_ERROR, 409
    ),
    ErrorCode.PEER_KEY_MISMATCH: ErrorKind(
        "A relayed secure aggregation key does not belong to the site it names.", EXIT_ERROR, 409
    ),
    ErrorCode.INTERNAL: ErrorKind("An internal error occurred.", EXIT_ERROR, 500),
}


def known_code(value: object) -> ErrorCode | None:
    """``value`` as an :class:`ErrorCode` when it is one (a code read off the wire), else
    ``None``."""
    return ErrorCode(value) if isinstance(value, str) and value in CATALOG else None


class FedpsyError(Exception):
    """Base of every fedpsy error, with one :class:`ErrorCode`.

    A code read off the wire may be given as its string; an unknown one is a ``ValueError``.
    """

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        detail: str = "",
        *,
        code: ErrorCode | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        given = self.code if code is None else code
        if given not in CATALOG:
            raise ValueError(f"unknown error code {given!r}")
        self.code = ErrorCode(given)
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
            "code": self.code.value,
            "detail": self.detail or self.message,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadInput(FedpsyError):
    code = ErrorCode.BAD_INPUT


class DictionaryError(FedpsyError):
    code = ErrorCode.DICTIONARY_INVALID


class Refused(FedpsyError):
    code = ErrorCode.REFUSED


class AuthError(FedpsyError):
    code = ErrorCode.UNSIGNED
