"""The site's privacy policy (``policy.toml``), owned by the site and read by its node.

The node writes commented safe defaults at ``fedpsy node init``; the site edits them.
Unknown keys, wrong types and out-of-range values are errors that name the key, so a
typo (``min_cel = 3``) can never silently leave a default in force.

The rules are the usual output-checking rules of statistical disclosure control: a
threshold on every count and on the rows behind any statistic, and enough rows per
parameter for models (Hundepool et al., *Statistical Disclosure Control*, Wiley 2012,
ch. 5; Griffiths et al., *Handbook on Statistical Disclosure Control for Outputs*,
2019). The defaults (5, 5, 10 rows, a parameter per 3 rows) are common choices; the
parameters per row follow DataSHIELD's long-standing default (``nfilter.glm`` 0.33); a
site may make them stricter.
"""

from __future__ import annotations

import difflib
import json
import logging
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.analyses import ANALYSIS_NAMES
from schemas.errors import ErrorCode, FedpsyError

logger = logging.getLogger(__name__)

KNOWN_ANALYSES: tuple[str, ...] = (*ANALYSIS_NAMES, "catalog")
"""Every analysis a policy can name (the schema's analyses and the catalog); all are allowed
by default."""

Approval = Literal["auto", "manual"]


class DPSettings(BaseModel):
    """Differential privacy at this node: noise on every release, and a budget.

    When enabled, each additive count/sum step this node answers gets Gaussian noise
    calibrated to (``epsilon_per_release``, ``delta``) and spends that much of
    ``epsilon_total`` in the node's ledger (basic composition); a request that would
    overspend is refused (``dp_budget_exhausted``). Mechanism and accounting:
    :mod:`node.privacy.dp`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    enabled: bool = False
    epsilon_total: float = Field(1.0, gt=0)
    epsilon_per_release: float = Field(0.1, gt=0)
    delta: float = Field(1e-6, gt=0, lt=1)

    @model_validator(mode="after")
    def _within_budget(self) -> DPSettings:
        if self.epsilon_per_release > self.epsilon_total:
            raise ValueError(
                f"epsilon_per_release {self.epsilon_per_release} is more than epsilon_total "
                f"{self.epsilon_total}; no release could ever be made"
            )
        return self


class Policy(BaseModel):
    """What may leave this node. Every field has a safe default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    min_cell: int = Field(5, ge=1)
    min_cohort: int = Field(5, ge=1)
    min_model_rows: int = Field(10, ge=1)
    max_parameter_fraction: float = Field(0.33, gt=0, le=1)
    max_categories: int = Field(40, ge=2)
    max_leverage: float = Field(0.5, gt=0, le=1)
    dominance_percent: float = Field(10.0, ge=0, lt=100)
    allowed_analyses: tuple[str, ...] = Field(KNOWN_ANALYSES, strict=False)
    default_approval: Approval = "auto"
    approval: dict[str, Approval] = Field(default_factory=dict)
    require_secure_aggregation: bool = False
    project_approval: Approval = "auto"
    project_variables: dict[str, list[str]] = Field(default_factory=dict)
    dp: DPSettings = Field(default_factory=DPSettings)

    @field_validator("allowed_analyses")
    @classmethod
    def _known_allowed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_known(value)
        return tuple(dict.fromkeys(value))

    @field_validator("approval")
    @classmethod
    def _known_approval(cls, value: dict[str, Approval]) -> dict[str, Approval]:
        _check_known(tuple(value))
        return value

    def allows(self, analysis: str) -> bool:
        """Whether ``analysis`` may run here at all."""
        return analysis in self.allowed_analyses

    def approval_for(self, analysis: str) -> Approval:
        """``auto`` (answer at once) or ``manual`` (wait for the site's approval)."""
        return self.approval.get(analysis, self.default_approval)


def _check_known(names: tuple[str, ...]) -> None:
    unknown = [name for name in names if name not in KNOWN_ANALYSES]
    if unknown:
        raise ValueError(
            f"unknown analysis {', '.join(map(repr, unknown))}; known: {', '.join(KNOWN_ANALYSES)}"
        )


def _toml_value(value: object) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _describe(error: ValidationError) -> str:
    """One line per problem, each naming the key (``dp.enabled``) and what to fix."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            parent = item["loc"][:-1]
            model: type[BaseModel] = DPSettings if parent == ("dp",) else Policy
            known = list(model.model_fields)
            close = difflib.get_close_matches(str(item["loc"][-1]), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            lines.append(f"unknown key {key!r} ({hint})")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            lines.append(f"{key} = {_toml_value(item['input'])}: {message}")
    return "; ".join(lines)


def parse_policy(text: str, where: str = "policy.toml") -> Policy:
    """A policy from TOML text; ``where`` names the source in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FedpsyError(
            f"{where}: not valid TOML ({exc})", code=ErrorCode.CONFIG_INVALID
        ) from exc
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise FedpsyError(f"{where}: {_describe(exc)}", code=ErrorCode.CONFIG_INVALID) from exc


def load_policy(path: Path) -> Policy:
    """The policy in ``path``; a missing or invalid file is an error (never silent defaults)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FedpsyError(
            f"{path} does not exist; every node needs a policy "
            "(`fedpsy node init` writes the defaults)",
            code=ErrorCode.CONFIG_INVALID,
        ) from exc
    policy = parse_policy(text, str(path))
    logger.info("policy loaded from %s", path)
    return policy


def write_default_policy(path: Path, *, overwrite: bool = False) -> None:
    """Write :func:`default_policy_text` to ``path`` (never over an existing policy)."""
    if path.exists() and not overwrite:
        raise FedpsyError(
            f"{path} already exists; edit it, or move it away to get the defaults again",
            code=ErrorCode.BAD_INPUT,
        )
    path.write_text(default_policy_text(), encoding="utf-8")


def default_policy_text() -> str:
    """The commented policy a new node starts with; it parses to ``Policy()``."""
    analyses = "\n".join(f'    "{name}",' for name in KNOWN_ANALYSES)
    return f"""\
# fedpsy privacy policy of this site.
#
# Every answer that leaves this node passes these rules first. A request that breaks
# one is refused with a code naming the rule; the refusal never says the protected
# number. Unknown keys are errors, so a typo cannot leave a default in force.
# Restart `fedpsy node serve` after editing.

# Smallest count that may leave in a table, histogram bin or group, the 1s or 0s of a
# binary variable, a model's outcome cells, and the events, exits and censored rows of a
# survival curve between reported times (1 .. min_cell-1 is refused; 0 may leave, because
# the list of categories is public in the dictionary). A design column must also differ
# from its most common value in at least this many rows.
min_cell = 5

# Smallest number of rows (persons after the cohort and complete cases) an answer may come
# from; any step that fails on fewer rows is refused the same way. Also the differencing
# defence: the rows a variable is summed over that differ from those of an earlier answer
# by 1 .. min_cohort-1 persons (or are the same persons under another cohort) are refused.
# Training's held-out test and validation parts (and their positives and negatives) need
# at least this many rows too.
min_cohort = 5

# Smallest number of rows for any fitted model (regression, survival, clustering, ...).
min_model_rows = 10

# A model may have at most this fraction of its rows as parameters (0.33: one parameter
# per 3 rows, DataSHIELD's default), so a model cannot be saturated by its rows; that no
# single row pins down the fit is max_leverage's rule below.
max_parameter_fraction = 0.33

# Largest number of categories a variable may have in a table or as a factor.
max_categories = 40

# Largest hat value (leverage) any row may have in a model's design at this site, and in
# the weights of two answers on the same variable together. A row with leverage near 1 is
# fitted by its own outcome, so the fit would reveal it (a term that is non-zero for one
# person only does this). 0.5 means that the best linear guess of a row's outcome from
# the model carries at least as much of the other rows' outcomes as of its own.
# Ordinary designs stay far below it (on average p/n).
max_leverage = 0.5

# Dominance (p%-rule) for every sum that leaves: means, variances, cross-products and
# model statistics. A sum is refused when, of the squared deviations from the mean, all
# but the two largest add up to less than this percentage of the largest: the second
# largest contributor could then estimate the largest to within p %. One far-out value
# (a data-entry error, a very rare person) triggers it; the refusal says to clip or
# transform the variable. 0 turns the rule off.
dominance_percent = 10.0

# The analyses this site takes part in; delete a line to refuse that analysis.
allowed_analyses = [
{analyses}
]

# When true, this site only answers additive steps through secure aggregation, so the
# coordinator sees only sums over sites, never this site's own partials.
require_secure_aggregation = false

# "auto": answer at once when the rules above allow. "manual": wait until the site
# approves each request (`fedpsy node approve DIR`).
default_approval = "auto"

# "auto": answer every project the coordinator signs into a task. "manual": answer only
# projects this site approved (`fedpsy node approve-project DIR NAME`); others are refused
# with project_not_approved.
project_approval = "auto"

# Per-analysis exceptions to default_approval, e.g.  train = "manual"
[approval]

# Variables a project may use at this site (codes or dictionary sections), e.g.
#   trd = ["depression", "age", "sex"]
# A project not listed here may use every variable.
[project_variables]

# Differential privacy. When enabled, this node adds Gaussian noise to every count and
# sum it releases (each release spends epsilon_per_release with the given delta) and
# refuses once epsilon_total is spent; steps it cannot noise (models) are refused.
[dp]
enabled = false
epsilon_total = 1.0
epsilon_per_release = 0.1
delta = 1e-6
"""
