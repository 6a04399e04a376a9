"""A Python client for researchers: keyword arguments in, pandas tables out::

    from coordinator.http.client import Consortium

    with Consortium("http://coordinator:8700", token="fpy_…") as c:
        fit = c.glm("trs ~ age + sex", family="binomial", on_refusal="drop_site")
        fit.table  # term × estimate, std_error, …, odds_ratio and its 95 % CI
        fit.n, fit.missing, fit.sites, fit.dropped_sites
        fit.envelope  # the raw answer (schemas.envelope.Envelope)

Every analysis has a method of its name (:data:`schemas.analyses.ANALYSIS_NAMES`) whose
keyword arguments are the request's fields: the analysis's own (``formula``, ``family``,
``variables``, …) and those every request shares (``cohort``, ``visit``, ``on_refusal``,
``min_sites``). A field left None is not sent (the coordinator's default applies); a field
the analysis does not have is a ``TypeError``. Each method's docstring shows the JSON it
sends; :meth:`Consortium.run` sends a request written as JSON.

Every method returns a :class:`Result`: ``table`` (the main DataFrame), companion frames
by name (``fit.groups``, ``km.merged_points``), ``n``, ``missing``, ``sites`` (per site
the rows used, and the code of each site left out), ``dropped_sites``, ``envelope``, and
any other field of the result JSON as an attribute (``fit.r_squared``). Coefficient tables
are indexed by ``term`` with ``estimate``, ``std_error``, ``statistic``, ``p_value``,
``ci_low``, ``ci_high`` (95 % Wald; t for OLS), plus ``odds_ratio`` / ``rate_ratio`` /
``hazard_ratio`` with ``…_ci_low``, ``…_ci_high`` where the model has them.

A refused job raises :class:`AnalysisRefused`, a failed one :class:`AnalysisFailed`
(both carry the ``envelope``; ``code``, ``detail`` and ``extra["sites"]`` name each site's
code); an error answer of the coordinator (a bad token, an unknown model) raises
:class:`CoordinatorError` with the problem body's code. All are
:class:`schemas.errors.FedpsyError`.
"""

from __future__ import annotations

from coordinator.http.client.consortium import Consortium
from coordinator.http.client.result import AnalysisFailed, AnalysisRefused, Result
from coordinator.http.remote import CoordinatorError

__all__ = ["AnalysisFailed", "AnalysisRefused", "Consortium", "CoordinatorError", "Result"]
