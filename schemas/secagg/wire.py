"""Messages of the secure aggregation protocol between coordinator and nodes.

One session per job: the coordinator fetches every node's signed key
(``GET /v1/secagg/key`` → :class:`KeyBundle`), relays all of them in a signed
``POST /v1/secagg/setup`` (:class:`SetupRequest`; each node answers with its round-1
Shamir shares sealed per recipient, :class:`SetupAnswer`). Each additive step is then a
normal task with a ``secure`` section (:class:`SecureTask`) answered by a
:class:`SecureAnswer` (the masked vector and the next round's sealed shares) and followed
by ``POST /v1/secagg/unmask`` (:class:`UnmaskRequest` → :class:`UnmaskAnswer`): the
survivors' shares of the self masks of the sites that answered and of the pair seeds of
sites that dropped (Bonawitz et al., CCS 2017, rounds 0–4).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyBundle(_Wire):
    """A node's X25519 public key signed by its Ed25519 identity."""

    identity: str  # PEM of the Ed25519 identity
    key: str  # base64 of the raw 32-byte X25519 public key
    signature: str  # base64 Ed25519 signature over "fedpsy-secagg-key-v1" ‖ key


class Participant(_Wire):
    site: str
    bundle: KeyBundle


class SetupRequest(_Wire):
    session: str = Field(pattern=SESSION_PATTERN)
    threshold: int = Field(ge=1)
    participants: list[Participant] = Field(min_length=2)


class SetupAnswer(_Wire):
    site: str
    shares: dict[str, str]  # recipient → sealed round-1 shares


class SecureTask(_Wire):
    """The ``secure`` section of a task: mask the result for this round."""

    session: str = Field(pattern=SESSION_PATTERN)
    round: int = Field(ge=1)
    participants: list[str] = Field(min_length=2)


class DpRelease(_Wire):
    """What differential privacy a node applied to one release."""

    mechanism: Literal["gaussian"] = "gaussian"
    epsilon: float
    delta: float
    sigma: float  # standard deviation of the noise this node added
    sensitivity: float  # L2 sensitivity of the released vector
    calibration: Literal["distributed", "local"]
    participants: int
    epsilon_spent: float  # this site's total after this release
    epsilon_total: float


class SecureAnswer(_Wire):
    """A node's answer to a secure task (``TaskOutcome.result``)."""

    masked: str  # base64, 16 bytes per number (little-endian, modulo 2^128)
    template: dict[str, Any]  # the result with every summed number set to zero
    shares: dict[str, str]  # recipient → sealed shares for the next round
    dp: DpRelease | None = None


class NoisyResult(_Wire):
    """A cleartext result with differential-privacy noise, and what was applied."""

    noisy: dict[str, Any]
    dp: DpRelease


class UnmaskRequest(_Wire):
    session: str = Field(pattern=SESSION_PATTERN)
    round: int = Field(ge=1)
    survivors: list[str] = Field(min_length=1)
    dropped: list[str] = Field(default_factory=list)
    shares: dict[str, str]  # sender → shares it sealed for the recipient for this round


class UnmaskAnswer(_Wire):
    site: str
    self_masks: dict[str, str]  # survivor → hex share of its self-mask seed
    pair_seeds: dict[str, dict[str, str]]  # dropped → survivor → hex share of their seed
