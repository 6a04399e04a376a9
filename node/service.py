"""The node's behaviour behind its API: authenticate, gate, compute, audit, release.

Every task passes, in order: signature check (key trusted, body intact, fresh, not
replayed) → task and step validation → analysis allowed by policy → secure aggregation
required for additive steps where the policy says so → differencing guard on the cohort →
the step's computation → disclosure check of the clear result → differential privacy
noise and secure-aggregation masking (:mod:`node.privacy.release`) → manual approval where the
policy asks for it → release. Each decision is written to the audit log, including
exactly what left (for a masked answer: its digest). The secure aggregation protocol's
own messages (key, setup, unmask) are handled here too and audited.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from node.audit import Asker, AuditLog, Entry
from node.auth.identity import load_identity, secret_salt
from node.auth.nonces import NonceStore
from node.auth.trust import load_trusted
from node.auth.verify import verify_request
from node.data.committed import DERIVED_FILE, save_harmonized, write_derived_dictionary
from node.data.frame_columnar import ColumnarFrameSource
from node.data.staging import DerivedFrameSource, DerivedValues
from node.privacy.admission import Admission, pack, unpack
from node.privacy.approvals import check_step_app
from node.privacy.differencing import DifferencingGuard
from node.privacy.intervals import IntervalMemory
from node.privacy.ledger import PrivacyLedger
from node.privacy.policy import Policy, load_policy
from node.privacy.projects import check_project, project_source
from node.privacy.queries import QueryMemory
from node.privacy.receipts import ReceiptSigner
from node.privacy.release import Releaser, audit_form
from node.privacy.separation import SeparatedSource
from node.secagg.sessions import SecaggNode
from node.site import NodeSite
from node.steps.design_cache import DesignCache, JobScope, job_designs
from node.store.locking import RELEASE, locked
from node.store.tables import audit_entry
from node.tasks import GUARD_KEY, TaskStore
from schemas import __version__
from schemas.errors import CATALOG, EXIT_REFUSED, ErrorCode, FedpsyError
from schemas.keys import public_pem
from schemas.receipts import Receipt
from schemas.secagg.wire import KeyBundle, SetupAnswer, SetupRequest, UnmaskAnswer, UnmaskRequest
from schemas.steps.base import StepBase
from schemas.steps.registry import STEPS, parse_step, step_spec
from schemas.values import check_cohort_values
from schemas.wire import Health, NodeInfo, PolicySummary, TaskOutcome, TaskRequest

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def _asker(request: Mapping[str, Any]) -> Asker:
    """Who a stored task came from."""
    return Asker(request.get("project"), request.get("researcher"))


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FedpsyError(
            f"{model.__name__}: {first['loc']}: {first['msg']}", code=ErrorCode.REQUEST_INVALID
        ) from None


class NodeService:
    """One node's task handling, independent of the HTTP layer."""

    def __init__(
        self,
        node: NodeSite,
        clock: Callable[[], float] = time.time,
        secagg: SecaggNode | None = None,
    ) -> None:
        self.node = node
        self.clock = clock
        self.policy: Policy = load_policy(node.dir.policy)
        self.nonces = NonceStore(node.engine)
        identity = load_identity(node.dir)
        self.public_key = public_pem(identity.public_key()).decode("ascii")
        self.split_salt = secret_salt(identity, "fedpsy training split")
        self.frames = DerivedFrameSource(self._store_frames(), self._keep)
        self.gate = Admission(
            self.policy,
            DifferencingGuard(node.engine, self.policy.min_cohort),
            IntervalMemory(node.engine, self.policy.min_cell),
            QueryMemory(node.engine, self.policy.max_leverage),
        )
        self.audit = AuditLog(node.engine)
        self.receipts = ReceiptSigner(self.site, identity, self.policy)
        self.tasks = TaskStore(node.engine, node.config.site)
        self.ledger = PrivacyLedger(node.engine)
        # a reopened node keeps its secure aggregation sessions (``secagg``)
        self.secagg = secagg or SecaggNode(node.dir, node.engine, identity)
        self.releaser = Releaser(self.policy, self.ledger, self.secagg, node.dictionary)
        self.designs: DesignCache[Any] = DesignCache()  # a job's designs across its rounds

    @property
    def site(self) -> str:
        return self.node.config.site

    def _store_frames(self) -> ColumnarFrameSource:
        return ColumnarFrameSource(
            self.node.engine,
            self.site,
            self.node.dictionary,
            self.node.dir.columnar,
            self.policy.min_cell,
            self.split_salt,
            self.policy.dominance_percent,
        )

    def _keep(self, derived: DerivedValues) -> None:
        """Keep a committed run's per-person values as variables of this node."""
        others = [
            self.node.dir.dictionary / name
            for name in self.node.config.dictionary_extensions
            if name != DERIVED_FILE
        ]
        path = write_derived_dictionary(self.node.dir.dictionary, derived.variables, others=others)
        save_harmonized(
            self.node.engine,
            derived.run_id,
            derived.values,
            visit=derived.visit,
            variables=derived.variables,
        )
        self.node.record_extension(path.name)
        frames = self._store_frames()
        frames.refresh()  # the values and the dictionary changed: every visit anew
        self.frames.inner = frames
        self.releaser = Releaser(self.policy, self.ledger, self.secagg, self.node.dictionary)
        self.audit.append(
            "derived.kept",
            None,
            {"run_id": derived.run_id, "variables": derived.codes, "rows": len(derived.values)},
        )

    def health(self) -> Health:
        return Health(
            site=self.site, version=__version__, dictionary_hash=self.node.dictionary.hash
        )

    def info(self) -> NodeInfo:
        p = self.policy
        return NodeInfo(
            site=self.site,
            version=__version__,
            dictionary_version=self.node.dictionary.version,
            dictionary_hash=self.node.dictionary.hash,
            variable_hashes=self.node.dictionary.variable_hashes(),
            public_key=self.public_key,
            policy=PolicySummary(
                min_cell=p.min_cell,
                min_cohort=p.min_cohort,
                min_model_rows=p.min_model_rows,
                max_parameter_fraction=p.max_parameter_fraction,
                max_categories=p.max_categories,
                allowed_analyses=list(p.allowed_analyses),
                manual_approval=[a for a in p.allowed_analyses if p.approval_for(a) == "manual"],
                require_secure_aggregation=p.require_secure_aggregation,
            ),
            steps=sorted(STEPS),
        )

    def authenticate(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> str:
        """Verify the request's signature; returns the signing key's fingerprint."""
        trusted = load_trusted(self.node.dir.root)
        verified = verify_request(headers, method, path, body, trusted, self.nonces, self.clock())
        return verified.key_fingerprint

    def submit(self, body: bytes, key: str) -> TaskOutcome:
        """Handle an authenticated task (idempotent per task id); logs its wall and CPU
        time (the CPU time of the thread serving it: the step, the gate, the audit)."""
        wall, cpu = time.perf_counter(), time.thread_time()
        outcome = self._submit(body, key)
        log.info(
            "task handled",
            extra={
                "task_id": outcome.task_id,
                "status": outcome.status,
                "wall_s": round(time.perf_counter() - wall, 6),
                "cpu_s": round(time.thread_time() - cpu, 6),
            },
        )
        return outcome

    def _submit(self, body: bytes, key: str) -> TaskOutcome:
        task = _parse(TaskRequest, body)
        known = self.tasks.get(task.task_id)
        if known is not None:
            return known
        request = task.model_dump(mode="json")
        asker = Asker(task.project, task.researcher)
        approval = {"project_approval": self.policy.project_approval}
        # the request's entry is written with its outcome, in the outcome's transaction
        received = Entry("received", {"key": key, **request, **approval})
        try:
            step = parse_step(task.step)
            if not self.policy.allows(task.analysis):
                raise FedpsyError(
                    f"analysis {task.analysis!r} is not allowed at this site",
                    code=ErrorCode.ANALYSIS_NOT_ALLOWED,
                )
            check_project(self.node.dir.root, self.policy, task.project)
            check_step_app(self.node.dir.root, step)
            check_cohort_values(step.cohort, self.node.dictionary)
            self._check_secure(task, step)
            # nothing leaves before the gate has judged the rows the step actually used
            readable = project_source(self.frames, self.policy, task.project)
            rows = SeparatedSource(readable, self.node.dictionary)
            job = JobScope(key, task.job_id, task.project, task.researcher)
            with job_designs(self.designs, job):
                computed = self.gate.compute(step, rows)
            self.gate.check(task.analysis, step, computed, self.node.dictionary.hash)
            release = self.releaser.release(task, step, computed)
            leaving = release.leaving()
            if self.policy.approval_for(task.analysis) == "manual":
                stored = release.stored() | {GUARD_KEY: pack(computed.used)}
                with locked(self.node.engine, audit_entry) as conn:
                    self.tasks.save(task.task_id, step.step, "pending", request, stored, None, conn)
                    pending = Entry("pending", {"digest": _digest(leaving)})
                    self.audit.append_all([received, pending], task.task_id, asker, conn)
                return TaskOutcome(task_id=task.task_id, site=self.site, status="pending")
            # the guard's atomic re-check, the audit of what leaves and the stored answer
            # (which GET /v1/tasks/… returns) are one transaction: all of them or none
            with locked(self.node.engine, *RELEASE) as conn:
                self.gate.admit(step, computed.used, self.node.dictionary.hash, conn)
                self.audit.append_all([received], task.task_id, asker, conn)
                receipt = self._released(task.task_id, leaving, request, conn)
                self.tasks.save(
                    task.task_id, step.step, "answered", request, leaving, receipt, conn
                )
        except FedpsyError as exc:
            if CATALOG[exc.code].exit_code != EXIT_REFUSED:
                error = Entry("error", {"code": exc.code})
                self.audit.append_all([received, error], task.task_id, asker)
                raise
            reason = {"code": exc.code, "detail": exc.detail or exc.message}
            with locked(self.node.engine, audit_entry) as conn:
                name = task.step.get("step", "?")
                self.tasks.save(
                    task.task_id, name, "refused", request, {"reason": reason}, None, conn
                )
                refused = Entry("refused", reason)
                self.audit.append_all([received, refused], task.task_id, asker, conn)
            return TaskOutcome(
                task_id=task.task_id, site=self.site, status="refused", reason=reason
            )
        except Exception:
            error = Entry("error", {"code": ErrorCode.INTERNAL})
            self.audit.append_all([received, error], task.task_id, asker)
            raise
        return TaskOutcome(
            task_id=task.task_id, site=self.site, status="answered", receipt=receipt, **leaving
        )

    def _check_secure(self, task: TaskRequest, step: StepBase) -> None:
        additive = step_spec(step.step).additive
        if task.secure is not None and not additive:
            raise FedpsyError(
                f"step {step.step!r} is not additive and cannot be secure-summed",
                code=ErrorCode.REQUEST_INVALID,
            )
        if task.secure is None and additive and self.policy.require_secure_aggregation:
            raise FedpsyError(
                f"this site sends step {step.step!r} only masked for secure "
                "aggregation; the request asked for it in the clear",
                code=ErrorCode.SECURE_AGGREGATION_REQUIRED,
            )

    def _released(
        self,
        task_id: str,
        leaving: dict[str, Any],
        request: dict[str, Any],
        conn: Connection | None = None,
    ) -> Receipt:
        """Sign the receipt of what leaves and audit it (in ``conn``'s transaction, if
        given); the caller keeps it with the task."""
        receipt = self.receipts.sign(task_id, request, leaving, self.node.dictionary.hash)
        left = audit_form(leaving, request.get("secure"))
        entry = {"digest": _digest(leaving), "left": left, "receipt": receipt.model_dump()}
        self.audit.append("released", task_id, entry, _asker(request), conn)
        return receipt

    def outcome(self, task_id: str) -> TaskOutcome:
        found = self.tasks.get(task_id)
        if found is None:
            raise FedpsyError(f"no task {task_id!r} at this node", code=ErrorCode.NOT_FOUND)
        return found

    def decide(self, task_id: str, approve: bool) -> TaskOutcome:
        """The site's decision on a pending task."""
        found = self.outcome(task_id)
        if found.status != "pending":
            raise FedpsyError(
                f"task {task_id} is {found.status}, not pending", code=ErrorCode.BAD_INPUT
            )
        request = self.tasks.request_of(task_id) or {}
        if not approve:
            with locked(self.node.engine, audit_entry) as conn:
                self.tasks.decide(task_id, "rejected", conn)
                self.audit.append("rejected", task_id, {}, _asker(request), conn)
            return self.outcome(task_id)
        stored = self.tasks.stored_of(task_id)
        used = unpack(stored.get(GUARD_KEY, []))
        leaving = {"rows": stored.get("rows"), "result": stored.get("result")}
        # as for an automatic answer: the guard, the audit and the answer in one transaction
        with locked(self.node.engine, *RELEASE) as conn:
            self.gate.admit(parse_step(request["step"]), used, self.node.dictionary.hash, conn)
            receipt = self._released(task_id, leaving, request, conn)
            self.tasks.answer(task_id, stored, receipt, conn)
        return self.outcome(task_id)

    # -- secure aggregation protocol messages --------------------------------------------
    def secagg_key(self) -> KeyBundle:
        """This node's X25519 public key signed by its identity."""
        return self.secagg.bundle()

    def secagg_setup(self, body: bytes, key: str) -> SetupAnswer:
        """Join a session: verify the relayed keys, return round 1's sealed shares."""
        request = _parse(SetupRequest, body)
        entry = {
            "key": key,
            "session": request.session,
            "threshold": request.threshold,
            "participants": [p.site for p in request.participants],
        }
        try:
            answer = self.secagg.setup(request)
        except FedpsyError as exc:
            self.audit.append("secagg.refused", None, {**entry, "code": exc.code})
            raise
        self.audit.append("secagg.setup", None, entry)
        return answer

    def secagg_unmask(self, body: bytes, key: str) -> UnmaskAnswer:
        """Reveal this node's shares for removing one round's masks."""
        request = _parse(UnmaskRequest, body)
        entry = {
            "key": key,
            "session": request.session,
            "round": request.round,
            "survivors": request.survivors,
            "dropped": request.dropped,
        }
        try:
            answer = self.secagg.unmask(request)
        except FedpsyError as exc:
            self.audit.append("secagg.refused", None, {**entry, "code": exc.code})
            raise
        self.audit.append(
            "secagg.unmask", None, {**entry, "revealed": _digest(answer.model_dump(mode="json"))}
        )
        return answer
