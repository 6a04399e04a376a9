"""Messages between coordinator and node (besides the steps themselves)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.receipts import GENESIS, HEX64, Receipt
from schemas.secagg.wire import SecureTask

API_VERSION = "v1"


class Health(BaseModel):
    """``GET /health``: unauthenticated liveness."""

    status: Literal["ok"] = "ok"
    site: str
    version: str
    dictionary_hash: str


class PolicySummary(BaseModel):
    """The public part of a site's policy."""

    min_cell: int
    min_cohort: int
    min_model_rows: int
    max_parameter_fraction: float
    max_categories: int
    allowed_analyses: list[str]
    manual_approval: list[str]
    require_secure_aggregation: bool


class NodeInfo(BaseModel):
    """``GET /v1/info``: who the node is and what it accepts."""

    site: str
    version: str
    dictionary_version: str
    dictionary_hash: str
    variable_hashes: dict[str, str]
    public_key: str  # PEM of the node's Ed25519 identity
    policy: PolicySummary
    steps: list[str]


class TaskRequest(BaseModel):
    """``POST /v1/tasks``: one step of one job, signed by the coordinator."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    job_id: str = Field(min_length=1, max_length=64)
    analysis: str
    step: dict[str, Any]
    secure: SecureTask | None = None  # mask the result for secure aggregation
    project: str | None = Field(default=None, max_length=64)  # the project asking
    researcher: str | None = Field(default=None, max_length=64)  # the researcher asking
    chain: str = Field(default=GENESIS, pattern=HEX64)  # the site's receipt chain in the job


class TaskOutcome(BaseModel):
    """The node's answer to a task (also ``GET /v1/tasks/{id}``)."""

    task_id: str
    site: str
    status: Literal["answered", "pending", "refused", "rejected"]
    rows: int | None = None
    result: dict[str, Any] | None = None
    reason: dict[str, str] | None = None
    receipt: Receipt | None = None  # the site's signed receipt of what it released
