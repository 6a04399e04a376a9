"""All derived variables of a site, from its CDM tables, as LONG observation rows.

:func:`derive_all` is pure: it reads pandas frames with the CDM columns and returns rows
``(person_id, visit, variable, value_num, value_text)``; the store decides where they go.
Visit-level variables carry the visit label, person-level ones
:data:`node.store.tables.PERSON_LEVEL`. Missing values are absent (no row).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd

from node.cdm_variables import drugs as drug_table
from node.cdm_variables.frames import (
    PERSON_LEVEL,
    as_float,
    concat_long,
    last_visit_day,
    long_rows,
    require_columns,
    visit_days,
    wide,
)
from node.cdm_variables.medication import MEDICATION_VARIABLES, current_medication
from node.cdm_variables.mrs import (
    MRS_SESSION_VARIABLES,
    MRS_VALUE_VARIABLES,
    mrs_sessions,
    mrs_values,
)
from node.cdm_variables.outcomes import OUTCOME_VARIABLES, event_outcomes
from node.cdm_variables.phenotypes import PHENOTYPES, phenotypes, symptom_status
from node.cdm_variables.scales import (
    GIVEN_CODES,
    PANSS_ITEMS,
    PANSS_SCORES,
    QIDS_ITEMS,
    QIDS_SCORES,
    baseline_values,
    response_scores,
    scale_scores,
)
from node.cdm_variables.trials import TRIAL_KINDS, adequate_trials, exposure_spans

logger = logging.getLogger(__name__)

FOLLOWUP_VARIABLE = "followup_days"

VISIT_VARIABLES = (
    *PANSS_SCORES,
    "panss_response",
    *QIDS_SCORES,
    "qids_response",
    *MEDICATION_VARIABLES,
    *MRS_VALUE_VARIABLES,
    *MRS_SESSION_VARIABLES,
)
PERSON_VARIABLES = (*PHENOTYPES, *OUTCOME_VARIABLES)
DERIVED_VARIABLES = (*VISIT_VARIABLES, *PERSON_VARIABLES)
"""Every variable code :func:`derive_all` can produce."""


@dataclass(frozen=True)
class SiteDerivation:
    """What :func:`derive_site` found: the derived LONG rows, and the given scale totals
    that disagree with their complete items
    (:data:`~node.cdm_variables.scales.CONFLICT_COLUMNS`; the items' total was kept)."""

    rows: pd.DataFrame
    given_conflicts: pd.DataFrame


def derive_all(
    persons: pd.DataFrame,
    visits: pd.DataFrame,
    observations: pd.DataFrame,
    drugs: pd.DataFrame,
    mrs: pd.DataFrame,
    events: pd.DataFrame,
    *,
    site_has_drug_rows: bool | None = None,
) -> pd.DataFrame:
    """Every derived variable of every person, as LONG rows: :func:`derive_site`'s rows."""
    return derive_site(
        persons, visits, observations, drugs, mrs, events, site_has_drug_rows=site_has_drug_rows
    ).rows


def derive_site(
    persons: pd.DataFrame,
    visits: pd.DataFrame,
    observations: pd.DataFrame,
    drugs: pd.DataFrame,
    mrs: pd.DataFrame,
    events: pd.DataFrame,
    *,
    site_has_drug_rows: bool | None = None,
) -> SiteDerivation:
    """Every derived variable of every person, as LONG rows (missing values dropped).

    Inputs have the CDM columns (see :data:`node.cdm_variables.frames.INPUT_COLUMNS`);
    ``observations`` is LONG with person-level values under the visit label
    :data:`~node.store.tables.PERSON_LEVEL`. The current-medication variables exist once the
    site has any drug exposure row; ``site_has_drug_rows`` says so when the frames hold only
    some of the site's persons (default: whether ``drugs`` has rows). Returns ``person_id``,
    ``visit``, ``variable``, ``value_num`` (float; binaries 0/1) and ``value_text`` (only
    ``mrs_scanner``). Scale totals a site gave (``observations`` rows of
    :data:`~node.cdm_variables.scales.GIVEN_CODES`) stand in where the items are incomplete.
    """
    started = time.perf_counter()
    for frame, table in (
        (persons, "persons"),
        (visits, "visits"),
        (observations, "observations"),
        (drugs, "drugs"),
        (mrs, "mrs"),
        (events, "events"),
    ):
        require_columns(frame, table)

    days = visit_days(visits)
    parts: list[pd.DataFrame] = []

    # one pass over the LONG rows
    items = wide(observations, (*PANSS_ITEMS, *QIDS_ITEMS, *GIVEN_CODES))
    panss_items = items.loc[:, ["person_id", "visit", *PANSS_ITEMS]]
    panss, qids, conflicts = scale_scores(items)
    panss["panss_response"], qids["qids_response"] = response_scores(panss, qids)
    parts.append(long_rows(panss, (*PANSS_SCORES, "panss_response")))
    parts.append(long_rows(qids, (*QIDS_SCORES, "qids_response")))

    annotated = drug_table.add_drug_info(drugs)
    medication = current_medication(days, annotated, site_has_drug_rows=site_has_drug_rows)
    parts.append(long_rows(medication, MEDICATION_VARIABLES))

    parts.append(long_rows(mrs_values(mrs), MRS_VALUE_VARIABLES))
    parts.append(long_rows(mrs_sessions(mrs), ("mrs_field_strength_t",), ("mrs_scanner",)))

    spans = exposure_spans(annotated, last_visit_day(days))
    trials = {kind: adequate_trials(spans, kind) for kind in TRIAL_KINDS}
    person_phenotypes = phenotypes(
        persons,
        symptom_status(panss_items, days),
        baseline_values(qids, "qids_total"),
        trials,
    )
    parts.append(long_rows(person_phenotypes, PHENOTYPES, visit=PERSON_LEVEL))

    followup_rows = observations.loc[
        (observations["visit"] == PERSON_LEVEL) & (observations["variable"] == FOLLOWUP_VARIABLE)
    ]
    followup = pd.Series(
        as_float(followup_rows["value_num"]).to_numpy(),
        index=pd.Index(followup_rows["person_id"], name="person_id"),
    )
    ids = pd.Index(persons["person_id"]).append(pd.Index(events["person_id"]))
    parts.append(
        long_rows(event_outcomes(ids, events, followup), OUTCOME_VARIABLES, visit=PERSON_LEVEL)
    )

    out = concat_long(parts)
    logger.info(
        "derived %d values for %d persons in %.2f s",
        len(out),
        persons["person_id"].nunique(),
        time.perf_counter() - started,
    )
    return SiteDerivation(out, conflicts)
