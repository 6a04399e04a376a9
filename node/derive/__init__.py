"""Derived variables computed at the node from the CDM tables (pure pandas, no database).

:func:`derive_all` returns LONG observation rows for every derived variable (scale totals,
response/remission, current medication and chlorpromazine equivalents, MRS variables,
relapse/rehospitalization, and the trs/urs/trd phenotypes); the modules hold one rule each:
:mod:`~node.derive.drugs` (DDD table, CPZ equivalents), :mod:`~node.derive.trials`
(adequate trials), :mod:`~node.derive.scales`, :mod:`~node.derive.phenotypes`,
:mod:`~node.derive.medication`, :mod:`~node.derive.mrs`, :mod:`~node.derive.outcomes`.
"""

from node.derive.drugs import add_cpz, cpz_equivalent, drug_class, load_ddd_table, unknown_drugs
from node.derive.pipeline import DERIVED_VARIABLES, PERSON_VARIABLES, VISIT_VARIABLES, derive_all

__all__ = [
    "DERIVED_VARIABLES",
    "PERSON_VARIABLES",
    "VISIT_VARIABLES",
    "add_cpz",
    "cpz_equivalent",
    "derive_all",
    "drug_class",
    "load_ddd_table",
    "unknown_drugs",
]
