"""Handler of the train step: local training and scoring on this site's rows.

The design is built exactly as for the regression steps (:func:`node.steps.design.design_of`,
complete cases, the coordinator's columns) and taken to the standardized basis with the
federated centers and scales; the outcome must be 0/1. The split into training,
validation and test rows is seeded with the site's secret, so the researcher cannot aim a
held-out row at a person. What the step discloses: the design facts of the training rows
and the model's parameter count (the gate's model rules), for a phase on held-out rows
their rows, positives and negatives (each at least the site's minimum cohort), and for
``test`` and ``local`` the score histogram counts (cells). ``train_sum`` runs the same phase and
answers its summable part (:class:`~schemas.steps.train.TrainSumResult`), which the node
masks for secure aggregation when the coordinator asks so.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np

from node.data.formula import Design
from node.data.source import FrameSource
from node.steps.base import Computed
from node.steps.design import basis, design_of, disclosure, queries_of, usage
from schemas.errors import ErrorCode, FedpsyError
from schemas.models.layout import Array, ModelSpec, Weights, flatten, initial_weights, unflatten
from schemas.models.layout import parameter_count as count_parameters
from schemas.models.metrics import exact_auc, score_histogram
from schemas.models.numeric import LocalPlan, local_train, log_loss_sum, predict
from schemas.models.split import Split, split_rows
from schemas.steps.base import Disclosure
from schemas.steps.train import TrainResult, TrainStep, TrainSumResult, TrainSumStep

logger = logging.getLogger(__name__)


def _outcome(design: Design, formula: str) -> Array:
    y = design.y
    if not np.isin(y, (0.0, 1.0)).all():
        raise FedpsyError(
            f"formula {formula!r}: training needs a binary 0/1 outcome",
            code=ErrorCode.REQUEST_INVALID,
        )
    return y


def _plan(step: TrainStep) -> LocalPlan:
    return LocalPlan(
        step.local_epochs, step.learning_rate, step.batch_size, step.l2, step.proximal_mu
    )


def _seed(step: TrainStep, site: str) -> int:
    return int(zlib.crc32(f"{step.seed}:{step.round}:{site}".encode())) & 0x7FFFFFFF


def _scores(
    step: TrainStep, spec: ModelSpec, weights: Weights, x: Array, y: Array, base: dict[str, object]
) -> dict[str, object]:
    p = predict(spec, weights, x)
    pos, neg = score_histogram(p, y, step.edges) if len(step.edges) >= 2 else ([], [])
    return {
        **base,
        "n": int(y.size),
        "loss_sum": log_loss_sum(p, y),
        "brier_sum": float(((p - y) ** 2).sum()),
        "correct": int(((p >= 0.5) == (y == 1)).sum()),
        "positives": int(y.sum()),
        "auc": exact_auc(p, y),
        "hist_pos": pos,
        "hist_neg": neg,
    }


def train(step: TrainStep, source: FrameSource) -> Computed:
    """Run ``step.phase`` on this site's split of its complete-case rows."""
    design = design_of(step, source)
    y_all = _outcome(design, step.formula)
    x_all = basis(step, design)
    p = x_all.shape[1]
    spec = step.model
    parts = split_rows(
        design.n,
        source.site,
        step.seed,
        step.test_fraction,
        step.validation_fraction,
        source.split_salt,
    )
    rows = {
        "fit": parts.train,
        "validate": parts.validation,
        "test": parts.test,
        "local": parts.test,
    }[step.phase]
    base: dict[str, object] = {"site": source.site, "phase": step.phase, "missing": design.missing}
    parameters = count_parameters(spec, p)
    try:
        if step.phase == "local":
            start = initial_weights(spec, p, step.seed)
            fitted = local_train(
                spec,
                start,
                x_all[parts.train],
                y_all[parts.train],
                _plan(step),
                _seed(step, source.site),
            )
            out = _scores(step, spec, fitted, x_all[rows], y_all[rows], base)
        else:
            weights = unflatten(spec, p, step.weights)
            if step.phase == "fit":
                x, y = x_all[rows], y_all[rows]
                fitted = local_train(spec, weights, x, y, _plan(step), _seed(step, source.site))
                loss = log_loss_sum(predict(spec, fitted, x), y)
                out = {**base, "n": int(y.size), "loss_sum": loss, "weights": flatten(fitted)}
            elif step.phase == "validate":
                x, y = x_all[rows], y_all[rows]
                loss = log_loss_sum(predict(spec, weights, x), y) if y.size else 0.0
                out = {**base, "n": int(y.size), "loss_sum": loss}
            else:
                out = _scores(step, spec, weights, x_all[rows], y_all[rows], base)
    except (ValueError, FloatingPointError) as exc:
        raise FedpsyError(f"train step: {exc}", code=ErrorCode.NOT_ESTIMABLE) from None
    result = TrainResult.model_validate(out)
    logger.debug("train %s at %s: %d rows", step.phase, source.site, result.n)
    phase = design.subset(rows)
    used = (*usage(design)[:2], *usage(phase))  # all rows read and used; the phase's rows
    revealed = _disclosure(design, parts, result, parameters)
    # the fit phase's weights come from sums over the training rows; the held-out phases
    # release scores and losses, no sums of a variable
    queries = queries_of(phase) if step.phase == "fit" else ()
    return Computed(result, revealed, used, queries=queries)


def _disclosure(design: Design, parts: Split, result: TrainResult, parameters: int) -> Disclosure:
    """The gate weighs the parameters against the rows the model is fitted on, with the
    design facts of those rows; every held-out part (validation, and test when it is not
    the training rows) states its rows, positives and negatives as ``split``, in every
    phase: the training rows of a run differ from all rows by exactly those parts (an
    empty part reveals nothing)."""
    revealed = disclosure(design.subset(parts.train))
    held_out = [parts.validation]
    if not np.array_equal(parts.test, parts.train):
        held_out.append(parts.test)
    split: list[int] = []
    for part in held_out:
        if part.size:
            positives = int(design.y[part].sum())
            split.extend((int(part.size), positives, int(part.size) - positives))
    cells = revealed.cells + tuple(result.hist_pos) + tuple(result.hist_neg)
    update = {"cells": cells, "parameters": parameters, "split": tuple(split)}
    return revealed.model_copy(update=update)


def train_sum(step: TrainSumStep, source: FrameSource) -> Computed:
    """``train`` for one phase, answered as its summable part (same disclosure)."""
    computed = train(step.as_train(), source)
    assert isinstance(computed.result, TrainResult)
    return Computed(TrainSumResult.of(computed.result), computed.disclosure)


__all__ = ["train", "train_sum"]
