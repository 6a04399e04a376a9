"""The privacy gate's threshold rules: what a step result may reveal under the policy.

Every step states what its result reveals as a :class:`~schemas.steps.base.Disclosure`
about the rows it actually used (after the cohort, complete cases and transforms); the
node calls :func:`check_disclosure` before anything leaves. Rules, in the order they are
checked (``docs/THREAT_MODEL.md`` names the attack each one stops and its test):

1. ``analysis_not_allowed`` — the policy does not list the analysis.
2. ``cohort_too_small``     — fewer rows than ``min_cohort`` (:func:`refuse_small_cohort`;
   the node also answers this for any step that fails on a cohort below the minimum).
3. ``cell_too_small``       — some count is in ``1 .. min_cell-1``: a table cell, a group,
   the count of each value of a two-valued variable, an outcome cell, exits from a risk
   set, or the rows a step left out at levels the request did not ask for.
4. ``split_too_small``      — a training phase on held-out rows with fewer than
   ``min_cohort`` rows, positives or negatives.
5. ``dominance``            — a sum whose largest contribution others could estimate to
   within ``dominance_percent`` % (the p%-rule on squared deviations).
6. ``column_too_thin``      — a non-constant design column with fewer than ``min_cell``
   rows off its most common value.
7. ``leverage_too_high``    — a design row with hat value above ``max_leverage``.
8. ``model_too_small``      — a model (``parameters`` given) on fewer than
   ``min_model_rows`` rows.
9. ``too_many_parameters``  — more parameters than ``max_parameter_fraction × rows``.

Refusal details name the rule, the step and the policy's threshold, never the rows, the
offending cell, its position or its value: a refusal may only tell that *some* value is
below a public threshold, which the rule itself implies.

**Zero cells may leave.** A count of 0 says that nobody in the cohort falls in a category
combination. The categories are public (the data dictionary lists them) so a zero does
not reveal that any person exists, and no person can be singled out by being absent.
Suppressing zeros would also make the suppression itself informative (a refused table
whose other cells are all large tells that the hidden cell is 0) and would refuse most
tables of rare diagnoses for no protection. What zeros can reveal is *group* attribute
disclosure — a row whose cells are all 0 but one tells that every member of that row
shares the remaining attribute. The threshold rules here do not cover that; it is the
standard residual risk of count tables (Hundepool et al. 2012, §5.2) that sites
accept by allowing ``crosstab``.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from node.privacy.policy import Policy
from schemas.errors import ErrorCode, FedpsyError, Refused
from schemas.steps.base import Disclosure

logger = logging.getLogger(__name__)


def refuse_small_cohort(policy: Policy, step_name: str) -> NoReturn:
    """The size refusal: the same code and words for a small cohort and for a step that
    failed on one."""
    _refuse(
        step_name,
        ErrorCode.COHORT_TOO_SMALL,
        f"the rows it would use are fewer than the site's minimum of {policy.min_cohort}",
    )


def check_disclosure(policy: Policy, analysis: str, step_name: str, disclosure: Disclosure) -> None:
    """Raise :class:`Refused` when ``disclosure`` breaks a rule of ``policy``; else return."""
    if not policy.allows(analysis):
        raise Refused(
            f"analysis {analysis!r} is not in this site's allowed_analyses",
            code=ErrorCode.ANALYSIS_NOT_ALLOWED,
        )
    counts = (*disclosure.cells, *disclosure.dropped, *disclosure.split, *disclosure.support)
    if disclosure.rows < 0 or any(c < 0 for c in counts):
        raise FedpsyError(f"step {step_name!r} stated a negative count", code=ErrorCode.INTERNAL)
    if disclosure.rows < policy.min_cohort:
        refuse_small_cohort(policy, step_name)
    _check_counts(policy, step_name, disclosure)
    _check_magnitudes(policy, step_name, disclosure)
    if disclosure.parameters is None:
        return
    if disclosure.rows < policy.min_model_rows:
        _refuse(
            step_name,
            ErrorCode.MODEL_TOO_SMALL,
            f"a model needs at least {policy.min_model_rows} rows under the site's policy",
        )
    if disclosure.parameters > policy.max_parameter_fraction * disclosure.rows:
        _refuse(
            step_name,
            ErrorCode.TOO_MANY_PARAMETERS,
            f"the model's {disclosure.parameters} parameters exceed the site's limit of "
            f"{policy.max_parameter_fraction:g} parameters per row; use fewer terms",
        )


def _check_counts(policy: Policy, step_name: str, disclosure: Disclosure) -> None:
    if any(0 < cell < policy.min_cell for cell in disclosure.cells):
        _refuse(
            step_name,
            ErrorCode.CELL_TOO_SMALL,
            f"a count it would return is below the site's minimum cell size of {policy.min_cell}",
        )
    if any(0 < cell < policy.min_cell for cell in disclosure.dropped):
        _refuse(
            step_name,
            ErrorCode.CELL_TOO_SMALL,
            "the rows it would leave out (at levels the request did not ask for) are below "
            f"the site's minimum cell size of {policy.min_cell}; ask for every level, or use "
            "a cohort of the levels asked for",
        )
    if any(count < policy.min_cohort for count in disclosure.split):
        _refuse(
            step_name,
            ErrorCode.SPLIT_TOO_SMALL,
            "a held-out part of the training rows (test or validation), or its positives "
            f"or negatives, is below the site's minimum of {policy.min_cohort}; use a "
            "larger test_fraction or validation_fraction, or more rows",
        )


def _check_magnitudes(policy: Policy, step_name: str, disclosure: Disclosure) -> None:
    threshold = policy.dominance_percent / 100.0
    if threshold > 0 and any(ratio < threshold for ratio in disclosure.dominance):
        _refuse(
            step_name,
            ErrorCode.DOMINANCE,
            "one or two persons' values dominate a sum it would return (p%-rule, "
            f"p = {policy.dominance_percent:g}); clip or transform the variable (e.g. log), "
            "or restrict the cohort",
        )
    if any(count < policy.min_cell for count in disclosure.support):
        _refuse(
            step_name,
            ErrorCode.COLUMN_TOO_THIN,
            "a design column differs from its most common value in fewer rows than the "
            f"site's minimum cell size of {policy.min_cell}; drop or coarsen that term",
        )
    if disclosure.leverage is not None and disclosure.leverage > policy.max_leverage:
        _refuse(
            step_name,
            ErrorCode.LEVERAGE_TOO_HIGH,
            "a row would have a hat value (leverage) above the site's maximum of "
            f"{policy.max_leverage:g}, so the fit would reveal its outcome; drop or "
            "transform the term that singles it out",
        )


def check_categories(policy: Policy, variable: str, n_categories: int) -> None:
    """Refuse a table or factor over ``variable`` with more than ``max_categories`` levels."""
    if n_categories > policy.max_categories:
        raise Refused(
            f"variable {variable!r} has more categories than the site allows "
            f"({policy.max_categories}); group its categories into fewer",
            code=ErrorCode.TOO_MANY_CATEGORIES,
        )


def _refuse(step_name: str, code: ErrorCode, why: str) -> NoReturn:
    logger.info("refused step %s: %s", step_name, code)
    raise Refused(f"step {step_name!r}: {why}", code=code)
