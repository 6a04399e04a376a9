"""Assumptions of the synthetic consortium: the figures the generator uses and their sources.

Everything here is synthetic. The figures below set the shape of the data so that the
analyses fedpsy runs (prevalences, response rates, survival, MRS group differences, site
and scanner effects) return values of the size the literature reports. They are round
figures chosen inside published ranges, not estimates.

Case mix and phenotypes
- Treatment-resistant schizophrenia (TRS) in ~30 % of F20/F25 patients (Howes et al. 2017,
  Am J Psychiatry 174:216–229, TRRIP consensus; first-episode cohorts give 23 %, Siskind et
  al. 2022, Br J Psychiatry 220:115–120). The generator draws 31 % latent TRS; a few lose
  the label to recording noise (a trial with no adherence record), so the derived ``trs``
  lands near 30 %.
- Ultra-resistance (URS, clozapine-resistant) in ~35 % of TRS (37 % latent; derived values
  fall to ~30–40 % because a clozapine trial must reach 84 days by the latest visit or
  recorded end). Siskind et al. 2017 (Can J Psychiatry 62:772–777) report clozapine
  response in 40 % of TRS with broad criteria; under the stricter "positive item >= 4 at
  the latest visit" rule about a third remain ultra-resistant.
- Treatment-resistant depression (TRD) in ~35 % of F32/F33 (37 % latent): >= 2 adequate
  failed antidepressant trials (31 % of medication-treated MDD, Zhdanava et al. 2021, J Clin
  Psychiatry 82:20m13699; in STAR*D about 4 in 10 had not remitted after two steps, Rush et
  al. 2006, Am J Psychiatry 163:1905–1917).
- Adequate trial definitions are those of PHENOTYPES.md (TRRIP: >= 6 weeks, >= 600 mg/day
  chlorpromazine equivalents by the DDD method, Leucht et al. 2016, Schizophr Bull 42
  Suppl 1:S90–S94, adherence >= 0.8; antidepressants >= 4 weeks at >= 1 DDD). Noise: trials
  of 28–41 days, doses one step under 600 CPZ-eq (olanzapine 15 mg, haloperidol 15 mg …),
  adherence 0.50–0.79 or not recorded, refill records split in two abutting rows.

Scales
- PANSS (30 items, 1–7). Baseline totals ~77 (non-TRS) and ~88 (TRS). Responders lose
  ~50 % of (total − 30) by week 12 (response = >= 20 % reduction of total − 30; Leucht et
  al. 2009, Acta Psychiatr Scand 119 Suppl 438:7–14; Obermeier et al. 2010, Schizophr Bull
  36:455–460). TRS persists; clozapine responders lose ~60 % of
  positive-item excess by week 12 and reach all positive items <= 3.
- CGI-S from PANSS by equipercentile linking (Leucht et al. 2005, Schizophr Res
  79:231–238: PANSS 58 ~ mildly, 75 ~ moderately, 95 ~ markedly, 116 ~ severely ill).
- BPRS total ~ 0.6 × PANSS − 4 (Leucht et al. 2013, Eur Neuropsychopharmacol 23:956–959).
- QIDS-SR16 items 0–3, total by Rush 2003 scoring (Biol Psychiatry 54:573–583).
  HAM-D17 ~ 1.25 × QIDS (Rush 2003 severity bands: QIDS 6/11/16/21 ~ HAM-D 8/14/20/26);
  MADRS ~ 1.3 × HAM-D (Leucht et al. 2018, J Affect Disord 226:326–331).
- Response of QIDS (mean fraction of baseline removed at the end of the acute phase):
  new antidepressant 0.45 (Trivedi et al. 2006, Am J Psychiatry 163:28–40: QIDS remission
  33 %, response 47 %); switch/augmentation in TRD 0.25 (STAR*D levels 3–4, remission
  ~13 %); IV ketamine, six infusions over two weeks: 65 % responders, mean QIDS 19 -> ~7 at
  week 2, kept to week 6 by maintenance, partly lost by week 26 (Murrough et al. 2013, Biol
  Psychiatry 74:250–256: 71 % response; Phillips et al. 2019, Am J Psychiatry 176:401–409:
  59 %); esketamine nasal spray + antidepressant: 60 % responders by week 6 (Popova et al.
  2019, Am J Psychiatry 176:428–438, TRANSFORM-2: response 69 %, MADRS −21 from 37);
  ECT: 65 % responders, course of 6–20 sessions (UK ECT Review Group 2003, Lancet
  361:799–808; Heijnen et al. 2010, J Clin Psychopharmacol 30:616–619: remission 48 %
  after medication failure); rTMS/iTBS, 20–30 sessions: 48 % responders (Blumberger et
  al. 2018, Lancet 391:1683–1692, THREE-D: 49 % iTBS, 47 % 10 Hz); deep TMS (Levkovitz et
  al. 2015, World Psychiatry 14:64–73).

MRS (water-referenced institutional units, i.u.)
- Means roughly those of healthy adults at 3 T (Gudmundson et al. 2023, Anal Biochem
  676:115227): Glu ~11, Gln ~3.5, NAA ~11, GABA ~1.8 in dACC/mPFC; occipital Glu ~9.5.
- TRS vs non-TRS: dACC Glu +0.5 SD, Gln +0.3 SD (Glx ~ +0.5 SD), mPFC Glu +0.25 SD,
  occipital none (Mouchlianitis et al. 2016, Schizophr Bull 42:744–752; Egerton et al.
  2012, Neuropsychopharmacology 37:2515–2521; Demjaha et al. 2014, Biol Psychiatry
  75:e11–e13). Depression: mPFC/dACC Glx −0.25 SD (Moriguchi et al. 2019, Mol Psychiatry
  24:952–964), GABA −0.3 SD (Schür et al. 2016, Hum Brain Mapp 37:3337–3352).
- Scanner effects: each scanner scales every metabolite (×0.85–1.15, plus ±5 % per
  metabolite) and adds an offset (SD 0.3 of the metabolite's SD), of the size vendor and
  site differences take in multi-site MRS (Mikkelsen et al. 2017, NeuroImage 159:32–45,
  "Big GABA"). CRLB 5–20 %, lower at 7 T; GABA by MEGA-PRESS (TE 68 ms) at 3 T.

Events
- Relapse in schizophrenia ~27 %/year on maintenance antipsychotics (Leucht et al. 2012,
  Lancet 379:2063–2071); hazards ×1.5 in TRS and ×1.8 in URS; clozapine lowers the
  rehospitalisation hazard (×0.55; Tiihonen et al. 2017, JAMA Psychiatry 74:686–693).
- Relapse after remission in depression: ~35 %/year after a first antidepressant (Rush
  2006), 38 % at 6 months after ECT (Jelovac et al. 2013, Neuropsychopharmacology
  38:2467–2474), fast after ketamine (median 18 days without maintenance, Murrough 2013),
  27 % on maintained esketamine (Daly et al. 2019, JAMA Psychiatry 76:893–903).
- Remission events: depression when QIDS-SR16 total <= 5; schizophrenia by Andreasen et
  al. 2005 (Am J Psychiatry 162:441–449) items <= 3 at both week 12 and week 26.
- Retention: ~93 % at week 2, ~85 % at week 6, ~77 % at week 12, ~65 % at week 26.
"""

from __future__ import annotations

VISITS: tuple[str, ...] = ("baseline", "week2", "week6", "week12", "week26")
VISIT_DAYS: tuple[int, ...] = (0, 14, 42, 84, 182)
VISIT_JITTER: tuple[int, ...] = (0, 2, 4, 7, 14)
CONTINUE_PROB: tuple[float, ...] = (1.0, 0.93, 0.92, 0.90, 0.85)
MISSED_VISIT_PROB = 0.04

TRS_SHARE = 0.31
URS_SHARE_OF_TRS = 0.37
TRD_SHARE = 0.37

# Shares inside the latent groups (see antipsychotics.py, antidepressants.py).
TRS_SUBGROUPS = {"clozapine_responder": 0.55, "clozapine_intolerant": 0.10}
URS_SUBGROUPS = {"urs_initiating": 0.55, "urs_established": 0.45}
NON_TRS_SUBGROUPS = {"early": 0.25, "one_adequate": 0.45, "remitted": 0.12, "inadequate": 0.18}
NON_TRD_SUBGROUPS = {"first": 0.40, "continuing": 0.35, "near_miss": 0.20, "mild": 0.05}
NON_TRS_RESPONDER = 0.65

# QIDS response by arm: (share of responders, responder fraction, non-responder fraction,
# time course at week2, week6, week12, week26 as multiples of the final fraction).
ARM_RESPONSE: dict[str, tuple[float, float, float, tuple[float, float, float, float]]] = {
    "pharmacotherapy": (0.45, 0.70, 0.20, (0.30, 0.75, 1.00, 1.00)),
    "pharmacotherapy_trd": (0.22, 0.60, 0.15, (0.25, 0.70, 1.00, 1.00)),
    "ketamine": (0.65, 0.82, 0.25, (1.00, 0.95, 0.70, 0.55)),
    "esketamine": (0.60, 0.75, 0.20, (0.60, 1.00, 1.00, 0.90)),
    "ect": (0.65, 0.75, 0.20, (0.50, 1.00, 0.90, 0.75)),
    "rtms": (0.48, 0.68, 0.15, (0.30, 1.00, 0.95, 0.85)),
}

# Annual hazards of first events.
REHOSP_RATE = {"psychosis": 0.20, "bipolar": 0.15, "depression": 0.06}
RELAPSE_RATE_PSYCHOSIS = 0.30
RELAPSE_RATE_BIPOLAR = 0.40
TRS_HAZARD_RATIO = 1.5
URS_HAZARD_RATIO = 1.8
CLOZAPINE_REHOSP_RATIO = 0.55
CLOZAPINE_RELAPSE_RATIO = 0.70
TRD_REHOSP_RATIO = 2.0
RELAPSE_AFTER_REMISSION = {
    "pharmacotherapy": 0.40,
    "pharmacotherapy_trd": 0.80,
    "ect": 0.95,
    "ketamine": 1.50,
    "esketamine": 0.35,
    "rtms": 0.60,
}
