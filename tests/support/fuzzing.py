"""Schemathesis over a served OpenAPI spec: request bodies the handlers accept, signed
requests, and a record of every exchange for the leak scan.

Two things make generated requests reach the code behind the API instead of bouncing off
its front door:

* **Bodies.** The node reads ``POST /v1/tasks`` as raw bytes (it must hash exactly what
  was signed), so its spec declares no body; the coordinator takes any JSON object. The
  spec is given the wire models as bodies (:func:`with_task_body`,
  :func:`with_analysis_body`) and fields naming variables, formulas and visits are
  narrowed to real ones (:func:`narrow`), so valid cases hit the steps and analyses.
* **Signatures.** Node tasks are signed with the coordinator's key by a ``requests`` auth
  hook (:func:`signer`) over the prepared request — the exact path and body bytes sent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from schemas.analyses import AnalysisRequest
from schemas.signing import sign_headers
from schemas.steps.registry import STEPS
from schemas.wire import TaskRequest

REF = "#/components/schemas/{model}"
VARIABLE_FIELDS = frozenset(
    {
        "var",
        "variable",
        "variables",
        "row",
        "column",
        "group",
        "time",
        "event",
        "batch",
        "covariates",
    }
)
"""Properties of step and analysis models that name dictionary variables."""

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class Exchange:
    """One request the fuzzer sent and what came back."""

    mode: str
    method: str
    path: str
    status: int
    body: str


def _components(spec: JsonSchema, models: list[type[BaseModel]]) -> None:
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    spec.setdefault("components", {}).setdefault("schemas", {}).update(top.get("$defs", {}))


def with_task_body(spec: JsonSchema, analyses: list[str]) -> JsonSchema:
    """``spec`` (the node's) with ``POST /v1/tasks`` taking a :class:`TaskRequest` whose
    step is any registered step and whose analysis is one of ``analyses``."""
    steps = [s.request for s in STEPS.values()]
    _components(spec, [TaskRequest, *steps])
    defs = spec["components"]["schemas"]
    for model in steps:  # the step name has a default in the model, but the node needs it
        required = defs[model.__name__].setdefault("required", [])
        if "step" not in required:
            required.append("step")
    task = defs["TaskRequest"]
    task["properties"]["analysis"] = {"type": "string", "enum": analyses}
    task["properties"]["step"] = {"anyOf": [{"$ref": REF.format(model=m.__name__)} for m in steps]}
    spec["paths"]["/v1/tasks"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="TaskRequest")}}},
    }
    return spec


def with_analysis_body(spec: JsonSchema) -> JsonSchema:
    """``spec`` (the coordinator's) with ``POST /v1/analyses`` taking an analysis request."""
    body = TypeAdapter(AnalysisRequest).json_schema(ref_template=REF)
    spec.setdefault("components", {}).setdefault("schemas", {}).update(body.pop("$defs", {}))
    content = spec["paths"]["/v1/analyses"]["post"]["requestBody"]["content"]
    content["application/json"]["schema"] = body
    return spec


def _enum(prop: JsonSchema, values: list[str]) -> JsonSchema:
    """``prop`` with every string in it replaced by one of ``values``."""
    if prop.get("type") == "string":
        return {"type": "string", "enum": values}
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        return {**prop, "items": _enum(prop["items"], values)}
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return {**prop, key: [_enum(p, values) for p in prop[key]]}
    return prop


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def narrow(
    spec: JsonSchema, codes: list[str], formulas: list[str], visits: list[str]
) -> JsonSchema:
    """Variable fields to ``codes``, formulas to ``formulas``, visits to ``visits``."""
    for obj in _objects(spec.get("components", {})):
        props = obj.get("properties")
        if not isinstance(props, dict):
            continue
        for name in list(props):
            if name in VARIABLE_FIELDS:
                props[name] = _enum(props[name], codes)
            elif name == "formula":
                props[name] = _enum(props[name], formulas)
            elif name == "visit":
                props[name] = _enum(props[name], visits)
    return spec


def signer(key: Ed25519PrivateKey) -> Callable[[Any], Any]:
    """A ``requests`` auth hook signing the prepared request as the coordinator does."""

    def sign(prepared: Any) -> Any:
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        # the node reads the path as urllib does: decoded, with tabs and newlines removed
        path = unquote(prepared.path_url).translate({9: None, 10: None, 13: None})
        prepared.headers.update(sign_headers(key, prepared.method, path, body))
        return prepared

    return sign


def _nothing(path: str) -> dict[str, str]:
    return {}


def _unsigned(path: str) -> Callable[[Any], Any] | None:
    return None


def _never(exchange: Exchange) -> bool:
    return False


@dataclass(frozen=True)
class Target:
    """Where and how :func:`fuzz` sends its cases.

    ``headers(path)``: fixed headers of an operation (the rest are generated);
    ``auth(path)``: an optional ``requests`` auth hook; ``inspect``: runs on every exchange
    (raise to fail); ``examples`` per operation and generation mode, ``body_examples`` for
    operations with a request body; ``derandomize``: the same cases on every run (stable
    CI), or new ones.
    """

    base_url: str
    headers: Callable[[str], Mapping[str, str]] = _nothing
    auth: Callable[[str], Callable[[Any], Any] | None] = _unsigned
    inspect: Callable[[Exchange], object] = _never
    examples: int = 20
    body_examples: int | None = None
    derandomize: bool = True


def fuzz(spec: JsonSchema, target: Target) -> list[Exchange]:
    """Run every operation of ``spec`` against ``target``, positive and negative cases,
    checking each response with schemathesis' ``not_a_server_error``."""
    schema = schemathesis.openapi.from_dict(spec)
    seen: list[Exchange] = []

    def exercise(case: Case[Any], mode: GenerationMode, hook: Callable[[Any], Any] | None) -> None:
        response = case.call(base_url=target.base_url, auth=hook, timeout=60)
        exchange = Exchange(
            mode.value,
            case.method,
            case.formatted_path,
            response.status_code,
            response.content.decode("utf-8", "replace"),
        )
        seen.append(exchange)
        target.inspect(exchange)
        case.validate_response(response, checks=[not_a_server_error])

    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        hook = target.auth(operation.path)
        fixed = dict(target.headers(operation.path)) or None
        count = target.examples
        if len(operation.body) and target.body_examples is not None:
            count = target.body_examples
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, headers=fixed)
            try:
                body = functools.partial(exercise, mode=mode, hook=hook)
                _property(strategy, count, target.derandomize, body)()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise  # a negative case needs something to break; /health has nothing
    return seen


def _property(
    strategy: SearchStrategy[Case[Any]],
    examples: int,
    derandomize: bool,
    body: Callable[[Case[Any]], None],
) -> Callable[[], None]:
    """A Hypothesis test running ``body`` on ``examples`` cases drawn from ``strategy``."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case[Any]) -> None:
        body(case)

    return run


def summary(exchanges: list[Exchange]) -> str:
    """Counts of (method path, status) for a failure message or a log."""
    counts: dict[str, int] = {}
    for e in exchanges:
        key = f"{e.method} {e.path.split('/')[1:3]} {e.mode} {e.status}"
        counts[key] = counts.get(key, 0) + 1
    return json.dumps(counts, indent=1, sort_keys=True)
