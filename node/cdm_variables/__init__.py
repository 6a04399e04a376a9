"""Derived variables computed at the node from the CDM tables (pure pandas, no database).

:func:`derive_all` returns LONG observation rows for every derived variable (scale totals,
also from totals a site gave, response/remission, current medication and chlorpromazine
equivalents, MRS variables, relapse/rehospitalization, and the trs/urs/trd phenotypes);
:func:`derive_site` also reports given totals that disagree with their items. The modules
hold one rule each:
:mod:`~node.cdm_variables.drugs` (DDD table, CPZ equivalents),
:mod:`~node.cdm_variables.trials` (adequate trials), :mod:`~node.cdm_variables.scales`,
:mod:`~node.cdm_variables.phenotypes`, :mod:`~node.cdm_variables.medication`,
:mod:`~node.cdm_variables.mrs`, :mod:`~node.cdm_variables.outcomes`.
"""

from node.cdm_variables.drugs import (
    add_cpz,
    cpz_equivalent,
    drug_class,
    load_ddd_table,
    unknown_drugs,
)
from node.cdm_variables.pipeline import (
    DERIVED_VARIABLES,
    PERSON_VARIABLES,
    VISIT_VARIABLES,
    SiteDerivation,
    derive_all,
    derive_site,
)

__all__ = [
    "DERIVED_VARIABLES",
    "PERSON_VARIABLES",
    "VISIT_VARIABLES",
    "SiteDerivation",
    "add_cpz",
    "cpz_equivalent",
    "derive_all",
    "derive_site",
    "drug_class",
    "load_ddd_table",
    "unknown_drugs",
]
