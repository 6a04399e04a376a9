"""Visit-level MRS variables from ``mrs_measure`` rows.

``<region>_<metabolite>`` (region dacc, mpfc, occ; metabolite glu, gln, glx, naa, gaba — the
lower-cased ``region`` and ``metabolite`` of the row) is the measured ``value`` at that
visit, in the row's institutional units. ``mrs_scanner`` is the ``scanner_id`` of the visit's
MRS session and ``mrs_field_strength_t`` its field strength; should one visit carry rows from
several scanners, the scanner with the most rows (then the first by name) is taken and a
warning logged. Rows of other regions or metabolites are not CDM variables and are skipped.
Scanner differences are left in the values: harmonize (ComBat; Fortin et al. 2018,
NeuroImage 167:104–120) before pooling.
"""

from __future__ import annotations

import logging

import pandas as pd

from node.cdm_variables.frames import as_float, wide
from schemas.cdm import METABOLITES, REGIONS

logger = logging.getLogger(__name__)

MRS_REGIONS = tuple(r.lower() for r in REGIONS)
MRS_METABOLITES = tuple(m.lower() for m in METABOLITES)
MRS_VALUE_VARIABLES = tuple(f"{r}_{m}" for r in MRS_REGIONS for m in MRS_METABOLITES)
MRS_SESSION_VARIABLES = ("mrs_scanner", "mrs_field_strength_t")


def mrs_values(mrs: pd.DataFrame) -> pd.DataFrame:
    """``person_id``, ``visit`` and the :data:`MRS_VALUE_VARIABLES` (NaN where not measured)."""
    codes = (
        mrs["region"].astype("str").str.strip().str.lower()
        + "_"
        + mrs["metabolite"].astype("str").str.strip().str.lower()
    )
    skipped = int((~codes.isin(MRS_VALUE_VARIABLES)).sum())
    if skipped:
        logger.info("skipped %d mrs_measure rows of regions/metabolites outside CDM v1", skipped)
    long = pd.DataFrame(
        {
            "person_id": mrs["person_id"].to_numpy(),
            "visit": mrs["visit"].to_numpy(),
            "variable": codes.to_numpy(),
            "value_num": as_float(mrs["value"]).to_numpy(),
        }
    )
    return wide(long, MRS_VALUE_VARIABLES)


def mrs_sessions(mrs: pd.DataFrame) -> pd.DataFrame:
    """``person_id``, ``visit``, ``mrs_scanner`` and ``mrs_field_strength_t`` of each visit."""
    rows = pd.DataFrame(
        {
            "person_id": mrs["person_id"].to_numpy(),
            "visit": mrs["visit"].to_numpy(),
            "mrs_scanner": mrs["scanner_id"].astype("str").to_numpy(),
            "field": as_float(mrs["field_strength_t"]).to_numpy(),
        }
    )
    rows = rows.loc[mrs["scanner_id"].notna().to_numpy()]
    if rows.empty:
        return pd.DataFrame(columns=["person_id", "visit", *MRS_SESSION_VARIABLES])
    per_scanner = (
        rows.groupby(["person_id", "visit", "mrs_scanner"], sort=False)
        .agg(rows=("field", "size"), mrs_field_strength_t=("field", "max"))
        .reset_index()
    )
    several = per_scanner.duplicated(["person_id", "visit"], keep=False)
    if several.any():
        logger.warning(
            "%d MRS sessions hold rows from more than one scanner; the scanner with the most "
            "rows is used",
            int(per_scanner.loc[several, ["person_id", "visit"]].drop_duplicates().shape[0]),
        )
    chosen = per_scanner.sort_values(
        ["person_id", "visit", "rows", "mrs_scanner"], ascending=[True, True, False, True]
    ).drop_duplicates(["person_id", "visit"], keep="first")
    return chosen.loc[:, ["person_id", "visit", *MRS_SESSION_VARIABLES]].reset_index(drop=True)
