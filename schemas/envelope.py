"""The result envelope of a job: what the coordinator answers a request with.

On the wire (``POST /v1/analyses?wait=true``, ``GET /v1/analyses/{id}``), on disk (the
coordinator's ``job.result``), and on the CLI's stdout the envelope is one JSON object::

    {"status": "ok" | "refused" | "error", "analysis": ..., "result": {...},
     "sites": {SITE: {"n": rows}}, "reason": null | {"code", "detail", "sites"?},
     "request_id": ..., "privacy": {"secure_aggregation": bool, "dp": null | {...}},
     "dropped_sites"?: {SITE: CODE}, "receipts"?: {SITE: RECEIPT},
     "signature"?: {"key", "fields", "value"}}

in that key order. ``reason.sites`` (each failing site's code) and ``dropped_sites`` (sites
left out under ``"on_refusal": "drop_site"``) appear only when there are such sites;
``receipts`` (each answering site's signed receipt: its last answer in the job, chaining
every earlier one; :mod:`schemas.receipts`) when sites answered, and ``signature`` (the
coordinator's over every other part) on every envelope the coordinator finished; every
other key is always there. ``fedpsy verify`` checks receipts and signature.
:meth:`Envelope.to_dict` gives that object, and :meth:`Envelope.model_validate` reads it
back.
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, ValuesView
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from schemas.errors import CATALOG, EXIT_ERROR, EXIT_OK, EXIT_REFUSED, known_code
from schemas.receipts import Receipt, ResultSignature

Status = Literal["ok", "refused", "error"]


def _absent(value: object) -> bool:
    return value is None


class FailureReason(BaseModel):
    """Why a job was refused or failed: a catalog code, a public detail and, when sites
    refused or failed, each one's code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    detail: str
    sites: dict[str, str] | None = Field(default=None, exclude_if=_absent)


class SiteRows(BaseModel):
    """The rows one site used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int


class DpSiteSpent(BaseModel):
    """The differential privacy one site spent in a job (basic composition)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float
    delta: float
    releases: int


class DpSpent(BaseModel):
    """The differential privacy of a job: per site, and the largest over sites."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mechanism: str
    epsilon: float
    delta: float
    sites: dict[str, DpSiteSpent]


class Privacy(BaseModel):
    """What protected the answers beyond the sites' gates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secure_aggregation: bool = False
    dp: DpSpent | None = None


class Envelope(BaseModel):
    """A job's answer: the result (``ok``) or the reason (``refused``, ``error``).

    ``analysis`` echoes the request's ``analysis`` value as it was sent (any JSON value,
    ``None`` when there was none); ``result`` is the analysis result's JSON.

    Besides its fields, an envelope reads like its JSON object by key
    (``envelope["result"]["n"]``, ``envelope.get("reason")``, ``dict(envelope)``), for
    scripts written against the JSON.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status
    analysis: JsonValue = None
    result: dict[str, Any] = Field(default_factory=dict)
    sites: dict[str, SiteRows] = Field(default_factory=dict)
    reason: FailureReason | None = None
    request_id: str | None = None
    privacy: Privacy = Field(default_factory=Privacy)
    dropped_sites: dict[str, str] | None = Field(default=None, exclude_if=_absent)
    receipts: dict[str, Receipt] | None = Field(default=None, exclude_if=_absent)
    signature: ResultSignature | None = Field(default=None, exclude_if=_absent)

    def to_dict(self) -> dict[str, Any]:
        """The envelope's JSON object (``json.dumps`` of it is what is stored and sent)."""
        return self.model_dump(mode="python")

    # -- read access by JSON key ----------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def keys(self) -> KeysView[str]:
        """The JSON object's keys: with them ``dict(envelope)``, ``{**envelope}`` and
        ``d.update(envelope)`` give the JSON object, not the model's fields."""
        return self.to_dict().keys()

    def values(self) -> ValuesView[Any]:
        return self.to_dict().values()

    def items(self) -> ItemsView[str, Any]:
        return self.to_dict().items()


def exit_status(result: Envelope) -> int:
    """The CLI exit code for an envelope: 0 ok, 3 refused, 2 bad request, 1 other errors."""
    if result.status == "ok":
        return EXIT_OK
    if result.status == "refused":
        return EXIT_REFUSED
    code = known_code(result.reason.code) if result.reason is not None else None
    return CATALOG[code].exit_code if code is not None else EXIT_ERROR
