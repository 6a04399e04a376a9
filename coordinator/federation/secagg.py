"""The coordinator's side of secure aggregation: it relays, collects and unmasks sums.

:func:`fetch_bundles` and :func:`establish` open a session (keys relayed, round-1 shares
collected); :meth:`SecureSession.sum` runs one round: every participant answers the step
with its masked vector (and its sealed shares for the next round), the survivors then
reveal their shares of the survivors' self-mask seeds and of the dropped sites' pair seeds,
and the coordinator rebuilds those seeds from ``t`` shares each, removes the masks from
the sum of the masked vectors and decodes it. It never holds a site's clear partial: a
masked vector is uniform in Z_2^128 to anyone without the seeds, and the seeds of one site
are never revealed together (Bonawitz et al., CCS 2017).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from coordinator.federation.failures import SiteFailure, SitesFailed, collect
from schemas.errors import ErrorCode, FedpsyError
from schemas.secagg import fixedpoint, keys, protocol, shamir
from schemas.secagg.wire import (
    DpRelease,
    KeyBundle,
    Participant,
    SecureAnswer,
    SecureTask,
    SetupAnswer,
    SetupRequest,
    UnmaskAnswer,
    UnmaskRequest,
)
from schemas.steps.additive import flatten, unflatten
from schemas.steps.base import StepBase, StepResult
from schemas.wire import TaskOutcome

log = logging.getLogger(__name__)
R = TypeVar("R", bound=StepResult)
M = TypeVar("M", bound=BaseModel)
KEY, SETUP, UNMASK = "/v1/secagg/key", "/v1/secagg/setup", "/v1/secagg/unmask"


class Transport(Protocol):
    """How the session reaches sites (implemented by the HTTP federation)."""

    async def fetch(self, site: str, path: str) -> dict[str, Any]: ...

    async def post(self, site: str, path: str, payload: BaseModel) -> dict[str, Any]: ...

    async def task(self, site: str, step: StepBase, secure: SecureTask) -> TaskOutcome: ...


def _failed(detail: str, sites: Mapping[str, SiteFailure] | None = None) -> FedpsyError:
    extra = {"sites": {s: f.code for s, f in sorted(sites.items())}} if sites else None
    return FedpsyError(detail, code=ErrorCode.SECURE_AGGREGATION_FAILED, extra=extra)


def _model(model: type[M], data: Any, site: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SiteFailure(
            ErrorCode.INTERNAL, f"{site} sent a malformed {model.__name__}: {exc}"
        ) from None


async def fetch_bundles(
    transport: Transport, sites: list[str], pinned: Mapping[str, str] | None = None
) -> dict[str, KeyBundle]:
    """Every site's signed key; a bundle naming another identity than the pinned one is
    ``peer_key_mismatch``."""

    async def one(site: str) -> KeyBundle:
        bundle = _model(KeyBundle, await transport.fetch(site, KEY), site)
        expected = (pinned or {}).get(site)
        if expected and keys.bundle_fingerprint(bundle) != expected:
            raise SiteFailure(
                ErrorCode.PEER_KEY_MISMATCH,
                "the node's key bundle names another identity than the one pinned at add-node",
            )
        keys.verify_bundle(bundle, site)
        return bundle

    bundles, failed = await collect({s: one(s) for s in sites})
    if failed:
        raise SitesFailed(failed)
    return bundles


async def establish(
    transport: Transport, bundles: Mapping[str, KeyBundle], threshold: int | None = None
) -> SecureSession:
    """Relay all keys to every site; collect their round-1 shares."""
    participants = sorted(bundles)
    t = threshold or protocol.default_threshold(len(participants))
    request = SetupRequest(
        session=uuid.uuid4().hex,
        threshold=t,
        participants=[Participant(site=s, bundle=bundles[s]) for s in participants],
    )

    async def one(site: str) -> SetupAnswer:
        return _model(SetupAnswer, await transport.post(site, SETUP, request), site)

    answers, failed = await collect({s: one(s) for s in participants})
    if failed:
        raise SitesFailed(failed)
    return SecureSession(
        transport,
        request.session,
        t,
        participants,
        pending={s: a.shares for s, a in answers.items()},
    )


@dataclass
class RoundOutcome(Generic[R]):
    """A secure round's sum, the rows each answering site used and who dropped."""

    total: R
    rows: dict[str, int]
    dropped: dict[str, SiteFailure]
    dp: dict[str, DpRelease]


@dataclass
class SecureSession:
    transport: Transport
    session: str
    threshold: int
    participants: list[str]
    pending: dict[str, dict[str, str]]  # sender → recipient → sealed shares for next round
    round: int = 0
    dropped: dict[str, SiteFailure] = field(default_factory=dict)

    async def run(
        self, step: StepBase, result_type: type[R], tolerate_dropouts: bool
    ) -> RoundOutcome[R]:
        """One round; raises for refusals, for dropouts unless tolerated, and below t."""
        self.round += 1
        alive = [s for s in self.participants if s not in self.dropped]
        task = SecureTask(session=self.session, round=self.round, participants=alive)
        outcomes, failed = await collect({s: self._answer(s, step, task) for s in alive})
        if any(f.refused for f in failed.values()) or (failed and not tolerate_dropouts):
            raise SitesFailed(failed)
        survivors = sorted(outcomes)
        if len(survivors) < self.threshold:
            raise _failed(
                f"only {len(survivors)} of {len(alive)} sites answered round "
                f"{self.round}; removing the masks needs at least {self.threshold}",
                failed,
            )
        answers = {s: outcomes[s][1] for s in survivors}
        layout = _common_layout(answers, result_type)
        seeds, pairs = await self._unmask(survivors, sorted(failed), alive)
        total = fixedpoint.zeros(layout.size)
        for s in survivors:
            total = fixedpoint.add(
                total, fixedpoint.from_bytes(keys.unb64(answers[s].masked, f"masked vector of {s}"))
            )
        clear = protocol.remove_masks(total, seeds, pairs)
        result = unflatten(fixedpoint.decode(clear), layout, result_type)
        self.pending = {s: answers[s].shares for s in survivors}
        self.dropped.update(failed)
        rows = {s: outcomes[s][0] for s in survivors}
        dp = {s: a.dp for s, a in answers.items() if a.dp is not None}
        return RoundOutcome(result, rows, failed, dp)

    async def _answer(
        self, site: str, step: StepBase, task: SecureTask
    ) -> tuple[int, SecureAnswer]:
        outcome = await self.transport.task(site, step, task)
        return outcome.rows or 0, _model(SecureAnswer, outcome.result, site)

    async def _unmask(
        self, survivors: list[str], dropped: list[str], alive: list[str]
    ) -> tuple[dict[str, bytes], dict[tuple[str, str], bytes]]:
        def request(site: str) -> UnmaskRequest:
            shares = {w: self.pending[w][site] for w in alive if w != site}
            return UnmaskRequest(
                session=self.session,
                round=self.round,
                survivors=survivors,
                dropped=dropped,
                shares=shares,
            )

        async def one(site: str) -> UnmaskAnswer:
            return _model(
                UnmaskAnswer, await self.transport.post(site, UNMASK, request(site)), site
            )

        answers, failed = await collect({s: one(s) for s in survivors})
        if len(answers) < self.threshold:
            raise _failed(
                f"only {len(answers)} sites revealed their shares for round "
                f"{self.round}; at least {self.threshold} are needed",
                failed,
            )
        holders = {protocol.holder(self.participants, s): a for s, a in answers.items()}

        def rebuild(owner: str, partner: str | None) -> bytes:
            try:
                shares = {
                    x: [
                        int(
                            a.self_masks[owner]
                            if partner is None
                            else a.pair_seeds[owner][partner],
                            16,
                        )
                    ]
                    for x, a in holders.items()
                }
                return protocol.int_seed(shamir.combine(shares, self.threshold)[0])
            except (ValueError, KeyError) as exc:
                raise _failed(
                    f"the revealed shares of round {self.round} are incomplete or "
                    f"inconsistent ({type(exc).__name__}: {exc})"
                ) from None

        seeds = {w: rebuild(w, None) for w in survivors}
        pairs = {(s, w): rebuild(w, s) for w in dropped for s in survivors}
        return seeds, pairs


def _common_layout(answers: Mapping[str, SecureAnswer], result_type: type[StepResult]) -> Any:
    layouts = {}
    for site, answer in answers.items():
        try:
            layouts[site] = flatten(result_type.model_validate(answer.template))[1]
        except ValidationError as exc:
            raise _failed(
                f"{site} answered a template that is not a {result_type.__name__}: {exc}"
            ) from None
    first = next(iter(layouts.values()))
    differing = sorted(s for s, lay in layouts.items() if lay != first)
    if differing:
        raise _failed(
            f"{result_type.__name__} results differ in shape or labels between "
            f"sites ({', '.join(differing)} differ from the others)"
        )
    return first
