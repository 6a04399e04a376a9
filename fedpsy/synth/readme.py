"""The README.md written next to the site folders: sites, case mix, scanners, assumptions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fedpsy.synth import assumptions
from fedpsy.synth.persons import MOOD_GROUPS, PSY_GROUPS
from fedpsy.synth.sites import ARMS, DIAGNOSES, SiteProfile


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _pct(part: int, whole: int) -> str:
    return f"{part} ({100.0 * part / whole:.0f} %)" if whole else "0"


def render(
    profiles: list[SiteProfile], counts: dict[str, Counter[str]], persons: int, seed: int
) -> str:
    """README text for a generated consortium."""
    total = sum(c["persons"] for c in counts.values())
    lines = [
        "# Synthetic fedpsy consortium",
        "",
        f"{len(profiles)} site(s), {total} persons (average {persons} per site), seed {seed}.",
        "Every value is synthetic. Each folder `<site>/` holds the CDM v1 ingest files",
        "`person.csv`, `visit.csv`, `observations.csv`, `drug_exposure.csv`, `mrs_measure.csv`",
        "and `event.csv` (a table with no rows is not written); load a folder with",
        "`fedpsy node ingest NODE_DIR <site>/`. Derived variables (PANSS and QIDS totals,",
        "`trs`, `urs`, `trd`, current medication, MRS variables, outcomes) are not in the",
        "files: the node derives them.",
        "",
        "## Sites and case mix",
        "",
        _row(["site", "persons", "profile", *DIAGNOSES]),
        _row(["---"] * (3 + len(DIAGNOSES))),
    ]
    for site in profiles:
        c = counts[site.name]
        cells = [_pct(c[f"dx:{dx}"], c["persons"]) for dx in DIAGNOSES]
        lines.append(_row([site.name, str(c["persons"]), site.archetype, *cells]))
    lines += [
        "",
        "## Latent clinical groups (what the derivations should recover)",
        "",
        "TRS = treatment-resistant schizophrenia among F20/F25 (URS = clozapine-resistant);",
        "TRD = treatment-resistant depression among F32/F33. Derived values differ a little",
        "from these counts because of recording noise (see assumptions).",
        "",
        _row(["site", "F20/F25", "TRS", "URS", "F32/F33", "TRD"]),
        _row(["---"] * 6),
    ]
    trs_groups = PSY_GROUPS[PSY_GROUPS.index("clozapine_responder") :]
    urs_groups = PSY_GROUPS[PSY_GROUPS.index("urs_initiating") :]
    for site in profiles:
        c = counts[site.name]
        psychosis = c["dx:F20"] + c["dx:F25"]
        depression = c["dx:F32"] + c["dx:F33"]
        trs = sum(c[f"psy:{g}"] for g in trs_groups)
        urs = sum(c[f"psy:{g}"] for g in urs_groups)
        trd = c[f"mood:{MOOD_GROUPS[-1]}"]
        lines.append(
            _row(
                [
                    site.name,
                    str(psychosis),
                    _pct(trs, psychosis),
                    _pct(urs, trs),
                    str(depression),
                    _pct(trd, depression),
                ]
            )
        )
    lines += [
        "",
        "## Services and rating habits",
        "",
        _row(
            [
                "site",
                "TRD arms (" + ", ".join(ARMS) + ")",
                "rTMS protocols",
                "HAM-D17",
                "MADRS",
                "BPRS",
                "MRS share",
            ]
        ),
        _row(["---"] * 7),
    ]
    for site in profiles:
        arms = ", ".join(f"{w:.2f}" for w in site.arm_weights)
        lines.append(
            _row(
                [
                    site.name,
                    arms,
                    ", ".join(site.rtms_protocols),
                    _yes(site.rates_hamd),
                    _yes(site.rates_madrs),
                    _yes(site.rates_bprs),
                    f"{site.mrs_share:.2f}",
                ]
            )
        )
    lines += [
        "",
        "## Scanners",
        "",
        "Measured = scale × true + shift × SD(metabolite), per metabolite (Glu, Gln, NAA,",
        "GABA); Glx = Glu + Gln. Sessions counts baseline and week-26 scans.",
        "",
        _row(
            [
                "scanner_id",
                "vendor",
                "field (T)",
                "TE (ms)",
                "GABA TE (ms)",
                "scale",
                "shift (SD)",
                "sessions",
            ]
        ),
        _row(["---"] * 8),
    ]
    for site in profiles:
        for s in site.scanners:
            lines.append(
                _row(
                    [
                        s.scanner_id,
                        s.vendor,
                        f"{s.field_strength_t:g}",
                        f"{s.te_ms:g}",
                        f"{s.gaba_te_ms:g}",
                        " ".join(f"{x:.3f}" for x in s.scale),
                        " ".join(f"{x:+.2f}" for x in s.shift_sd),
                        str(counts[site.name][f"scans:{s.scanner_id}"]),
                    ]
                )
            )
    lines += ["", "## Assumptions", "", (assumptions.__doc__ or "").strip(), ""]
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def write_readme(
    out: Path,
    profiles: list[SiteProfile],
    counts: dict[str, Counter[str]],
    persons: int,
    seed: int,
) -> Path:
    path = out / "README.md"
    path.write_text(render(profiles, counts, persons, seed), encoding="utf-8", newline="\n")
    return path
