"""A researcher's connection to a running coordinator: submit a request, wait for its job.

Shared by ``fedpsy run`` and the Python client (:mod:`coordinator.http.client`), so both
read the coordinator's answers the same way: an error answer's RFC 9457 problem body
becomes a :class:`CoordinatorError` with the problem's ``code`` and ``detail``, and a
coordinator that cannot be reached is ``coordinator_unreachable``, naming its URL.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from schemas.envelope import Envelope
from schemas.errors import ErrorCode, FedpsyError, known_code

DONE = ("ok", "refused", "error")


class CoordinatorError(FedpsyError):
    """An error the coordinator answered with, or could not be reached for; its text starts
    with the code (``[unauthorized] A valid token is required. …``)."""

    def __str__(self) -> str:
        return f"[{self.code}] {super().__str__()}"


def checked(response: httpx.Response) -> Any:
    """The JSON of a coordinator's answer; an error answer raises its problem's code."""
    if response.status_code < 400:
        return response.json()
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        raise CoordinatorError(
            f"the coordinator answered HTTP {response.status_code} for {response.url}",
            code=ErrorCode.INTERNAL,
        )
    raise CoordinatorError(
        str(problem.get("detail", "")),
        code=known_code(problem.get("code")) or ErrorCode.INTERNAL,
    )


class CoordinatorSession:
    """Authenticated requests to the coordinator at ``url`` with a researcher's token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        poll: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.poll = poll
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CoordinatorSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` as JSON (errors raise :class:`CoordinatorError`)."""
        return self._call("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return checked(self._http.request(method, path, **kwargs))
        except httpx.HTTPError as exc:
            raise CoordinatorError(
                f"cannot reach the coordinator at {self.url}: {exc}",
                code=ErrorCode.COORDINATOR_UNREACHABLE,
            ) from None

    def run(self, request: dict[str, Any]) -> Envelope:
        """Submit ``request`` and wait for its job; the result envelope, whatever its status."""
        job_id = self.post("/v1/analyses", request)["job_id"]
        while True:
            job = self.get(f"/v1/analyses/{job_id}")
            if job["status"] in DONE and job["result"] is not None:
                return Envelope.model_validate(job["result"])
            time.sleep(self.poll)
