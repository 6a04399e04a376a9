"""How a train step and its result travel in Flower messages (both ClientApps use this).

Server → client: ``RecordDict({"arrays": ArrayRecord(weights), "config": ConfigRecord})``
as Flower's strategies build it; the config carries the step without its weights as JSON
under ``fedpsy-step``. Client → server: the updated weights (``fit`` only) as the one
``ArrayRecord``, one ``MetricRecord`` with ``num-examples`` (the weight FedAvg averages
by) and ``loss``, and the full result JSON (without weights) in the ``ConfigRecord``
``result``. A site that refuses replies normally with the ``ConfigRecord`` ``refusal``
(``site``, ``code``, ``detail``) and ``num-examples`` 0, so the ServerApp can tell a
privacy refusal (which names the rule) from a crash (a Flower error reply).

Import this module only after :func:`schemas.training.env.flower_environment`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from schemas.errors import ErrorCode, FedpsyError
from schemas.steps.train import TrainResult, TrainStep

STEP_KEY = "fedpsy-step"
WEIGHTS_KEY = "arrays"
CONFIG_KEY = "config"
RESULT_KEY = "result"
REFUSAL_KEY = "refusal"
EXAMPLES = "num-examples"

Runner = Callable[[TrainStep], TrainResult]


def step_config(step: TrainStep) -> ConfigRecord:
    """The config record of ``step`` (its weights travel in the array record)."""
    return ConfigRecord({STEP_KEY: step.model_dump_json(exclude={"weights"})})


def weights_record(flat: list[float]) -> ArrayRecord:
    return ArrayRecord([np.asarray(flat, dtype=np.float64)])


def step_of(message: Message) -> TrainStep:
    """The train step a message carries."""
    content = message.content
    config = content.config_records.get(CONFIG_KEY)
    if config is None or STEP_KEY not in config:
        raise FedpsyError(
            "the message carries no fedpsy train step", code=ErrorCode.REQUEST_INVALID
        )
    data = json.loads(str(config[STEP_KEY]))
    arrays = content.array_records.get(WEIGHTS_KEY)
    if arrays is not None:
        data["weights"] = [float(v) for a in arrays.to_numpy_ndarrays() for v in np.ravel(a)]
    return TrainStep.model_validate(data)


def result_reply(message: Message, result: TrainResult) -> Message:
    """The reply carrying ``result``."""
    records = RecordDict()
    if result.phase == "fit":
        records[WEIGHTS_KEY] = weights_record(result.weights)
    mean = result.loss_sum / result.n if result.n else 0.0
    records["metrics"] = MetricRecord({EXAMPLES: result.n, "loss": mean})
    records[RESULT_KEY] = ConfigRecord({"json": result.model_dump_json(exclude={"weights"})})
    return Message(records, reply_to=message)


def refusal_reply(message: Message, site: str, error: FedpsyError) -> Message:
    """The reply of a site whose gate (or the request) said no."""
    records = RecordDict()
    if message.metadata.message_type.startswith("train"):
        step = step_of(message)
        records[WEIGHTS_KEY] = weights_record(step.weights)
    records["metrics"] = MetricRecord({EXAMPLES: 0, "loss": 0.0})
    records[REFUSAL_KEY] = ConfigRecord(
        {"site": site, "code": error.code.value, "detail": error.detail or error.message}
    )
    return Message(records, reply_to=message)


def handle(message: Message, site: str, runner: Runner) -> Message:
    """Run the message's step through ``runner``; a ``FedpsyError`` becomes a refusal."""
    try:
        step = step_of(message)
        result = runner(step)
    except FedpsyError as exc:
        return refusal_reply(message, site, exc)
    return result_reply(message, result)


def refusal_of(content: RecordDict) -> tuple[str, str, str] | None:
    """``(site, code, detail)`` of a refusal reply, else None."""
    record = content.config_records.get(REFUSAL_KEY)
    if record is None:
        return None
    return str(record["site"]), str(record["code"]), str(record["detail"])


def result_of(content: RecordDict) -> TrainResult:
    """The result of a reply (weights from its array record)."""
    record = content.config_records.get(RESULT_KEY)
    if record is None:
        raise FedpsyError("a training reply carries no result", code=ErrorCode.TRAINING_FAILED)
    data = json.loads(str(record["json"]))
    arrays = content.array_records.get(WEIGHTS_KEY)
    if arrays is not None and data.get("phase") == "fit":
        data["weights"] = [float(v) for a in arrays.to_numpy_ndarrays() for v in np.ravel(a)]
    return TrainResult.model_validate(data)


__all__ = [
    "Runner",
    "handle",
    "refusal_of",
    "refusal_reply",
    "result_of",
    "result_reply",
    "step_config",
    "step_of",
    "weights_record",
]
