"""The privacy gate's threshold rules: what a step result may reveal under the policy.

Every step states what its result reveals as a :class:`~schemas.steps.base.Disclosure`
(rows used, every count that leaves, number of model parameters); the node calls
:func:`check_disclosure` before anything leaves. Rules, in the order they are checked:

1. ``analysis_not_allowed`` — the policy does not list the analysis.
2. ``cohort_too_small``     — fewer rows than ``min_cohort``.
3. ``cell_too_small``       — some count is in ``1 .. min_cell-1``.
4. ``model_too_small``      — a model (``parameters`` given) on fewer than
   ``min_model_rows`` rows.
5. ``too_many_parameters``  — more parameters than ``max_parameter_fraction × rows``.

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

from node.policy import Policy
from schemas.errors import FedpsyError, Refused
from schemas.steps.base import Disclosure

logger = logging.getLogger(__name__)


def check_disclosure(policy: Policy, analysis: str, step_name: str, disclosure: Disclosure) -> None:
    """Raise :class:`Refused` when ``disclosure`` breaks a rule of ``policy``; else return."""
    if not policy.allows(analysis):
        raise Refused(
            f"analysis {analysis!r} is not in this site's allowed_analyses",
            code="analysis_not_allowed",
        )
    if disclosure.rows < 0 or any(cell < 0 for cell in disclosure.cells):
        raise FedpsyError(f"step {step_name!r} stated a negative count", code="internal")
    if disclosure.rows < policy.min_cohort:
        _refuse(
            step_name,
            "cohort_too_small",
            f"the rows it would use are fewer than the site's minimum of {policy.min_cohort}",
        )
    if any(0 < cell < policy.min_cell for cell in disclosure.cells):
        _refuse(
            step_name,
            "cell_too_small",
            f"a count it would return is below the site's minimum cell size of {policy.min_cell}",
        )
    if disclosure.parameters is None:
        return
    if disclosure.rows < policy.min_model_rows:
        _refuse(
            step_name,
            "model_too_small",
            f"a model needs at least {policy.min_model_rows} rows under the site's policy",
        )
    if disclosure.parameters > policy.max_parameter_fraction * disclosure.rows:
        _refuse(
            step_name,
            "too_many_parameters",
            f"the model's {disclosure.parameters} parameters exceed the site's limit of "
            f"{policy.max_parameter_fraction:g} parameters per row; use fewer terms",
        )


def check_categories(policy: Policy, variable: str, n_categories: int) -> None:
    """Refuse a table or factor over ``variable`` with more than ``max_categories`` levels."""
    if n_categories > policy.max_categories:
        raise Refused(
            f"variable {variable!r} has more categories than the site allows "
            f"({policy.max_categories}); group its categories into fewer",
            code="too_many_categories",
        )


def _refuse(step_name: str, code: str, why: str) -> NoReturn:
    logger.info("refused step %s: %s", step_name, code)
    raise Refused(f"step {step_name!r}: {why}", code=code)
