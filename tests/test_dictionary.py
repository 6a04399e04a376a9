"""The data dictionary v1: shipped codes, content hashes, extensions, errors, value rules."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from schemas.dictionary import Dictionary, Variable, load_dictionary
from schemas.errors import DictionaryError, FedpsyError

# code -> (type, level, source), written out from CDM v1
PERSON = ("person", "person")
OBS_VISIT = ("visit", "observation")
OBS_PERSON = ("person", "observation")
DER_VISIT = ("visit", "derived")
DER_PERSON = ("person", "derived")


def _expected() -> dict[str, tuple[str, str, str]]:
    spec: dict[str, tuple[str, tuple[str, str]]] = {
        "sex": ("categorical", PERSON),
        "birth_year": ("integer", PERSON),
        "primary_diagnosis": ("categorical", PERSON),
        "age": ("numeric", OBS_VISIT),
        "education_years": ("numeric", OBS_PERSON),
        "panss_positive": ("integer", DER_VISIT),
        "panss_negative": ("integer", DER_VISIT),
        "panss_general": ("integer", DER_VISIT),
        "panss_total": ("integer", DER_VISIT),
        "cgi_s": ("integer", OBS_VISIT),
        "bprs_total": ("integer", OBS_VISIT),
        "qids_total": ("integer", DER_VISIT),
        "hamd17_total": ("integer", OBS_VISIT),
        "madrs_total": ("integer", OBS_VISIT),
        "antipsychotic_current": ("binary", DER_VISIT),
        "clozapine_current": ("binary", DER_VISIT),
        "antidepressant_current": ("binary", DER_VISIT),
        "cpz_eq_current": ("numeric", DER_VISIT),
        "mrs_scanner": ("categorical", DER_VISIT),
        "mrs_field_strength_t": ("numeric", DER_VISIT),
        "ect_sessions": ("integer", OBS_VISIT),
        "ketamine": ("binary", OBS_VISIT),
        "esketamine": ("binary", OBS_VISIT),
        "rtms_protocol": ("categorical", OBS_VISIT),
        "rtms_sessions": ("integer", OBS_VISIT),
        "followup_days": ("integer", OBS_PERSON),
        "panss_response": ("binary", DER_VISIT),
        "qids_response": ("binary", DER_VISIT),
        "qids_remission": ("binary", DER_VISIT),
        "relapse": ("binary", DER_PERSON),
        "time_to_relapse": ("numeric", DER_PERSON),
        "rehospitalization": ("binary", DER_PERSON),
        "time_to_rehospitalization": ("numeric", DER_PERSON),
        "trs": ("binary", DER_PERSON),
        "urs": ("binary", DER_PERSON),
        "trd": ("binary", DER_PERSON),
    }
    for letter, count in (("p", 7), ("n", 7), ("g", 16)):
        for i in range(1, count + 1):
            spec[f"panss_{letter}{i}"] = ("integer", OBS_VISIT)
    for i in range(1, 17):
        spec[f"qids_{i:02d}"] = ("integer", OBS_VISIT)
    for region in ("dacc", "mpfc", "occ"):
        for metabolite in ("glu", "gln", "glx", "naa", "gaba"):
            spec[f"{region}_{metabolite}"] = ("numeric", DER_VISIT)
    return {code: (kind, level, source) for code, (kind, (level, source)) in spec.items()}


EXPECTED = _expected()

# code -> (min, max) ranges from CDM v1
RANGES: dict[str, tuple[float, float]] = {
    "birth_year": (1900, 2030),
    "age": (12, 110),
    "education_years": (0, 30),
    "panss_positive": (7, 49),
    "panss_negative": (7, 49),
    "panss_general": (16, 112),
    "panss_total": (30, 210),
    "cgi_s": (1, 7),
    "bprs_total": (18, 126),
    "qids_total": (0, 27),
    "hamd17_total": (0, 52),
    "madrs_total": (0, 60),
    "cpz_eq_current": (0, 10000),
    "ect_sessions": (0, 100),
    "rtms_sessions": (0, 100),
    "followup_days": (0, 20000),
    **{
        f"panss_{c}{i}": (1, 7) for c, n in (("p", 7), ("n", 7), ("g", 16)) for i in range(1, n + 1)
    },
    **{f"qids_{i:02d}": (0, 3) for i in range(1, 17)},
}

CATEGORIES = {
    "sex": ("F", "M"),
    "primary_diagnosis": ("F20", "F25", "F31", "F32", "F33", "HC"),
    "rtms_protocol": ("none", "hf_rtms", "lf_rtms", "itbs", "dtms"),
}


@pytest.fixture(scope="module")
def shipped() -> Dictionary:
    return load_dictionary()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- shipped dictionary


def test_every_cdm_code_is_shipped_with_type_level_and_source(shipped: Dictionary) -> None:
    assert shipped.version == "cdm-v1"
    assert set(shipped.variables) == set(EXPECTED)
    for code, (kind, level, source) in EXPECTED.items():
        variable = shipped.get(code)
        assert (variable.type, variable.level, variable.source) == (kind, level, source), code


def test_ranges_categories_and_units(shipped: Dictionary) -> None:
    for code, (low, high) in RANGES.items():
        variable = shipped.get(code)
        assert (variable.min, variable.max) == (low, high), code
    for code, categories in CATEGORIES.items():
        assert shipped.get(code).categories == categories, code
    scanner = shipped.get("mrs_scanner")
    assert scanner.open and scanner.categories is None
    assert shipped.get("dacc_glx").unit == "i.u."
    assert shipped.get("cpz_eq_current").unit == "mg/day"
    assert "site" not in shipped


def test_labels_name_the_real_items(shipped: Dictionary) -> None:
    assert "Delusions" in shipped.get("panss_p1").label
    assert "Blunted affect" in shipped.get("panss_n1").label
    assert "Active social avoidance" in shipped.get("panss_g16").label
    assert "Falling asleep" in shipped.get("qids_01").label
    assert "Feeling restless" in shipped.get("qids_16").label
    assert "Kay" in (shipped.get("panss_p1").description or "")
    assert "Rush" in (shipped.get("qids_05").description or "")
    assert "Howes" in (shipped.get("trs").description or "")
    assert "TRRIP" in (shipped.get("trs").derived or "")


def test_every_derived_variable_has_a_rule(shipped: Dictionary) -> None:
    derived = shipped.codes(source="derived")
    assert "trs" in derived and "panss_total" in derived and "dacc_glu" in derived
    for code in derived:
        assert (shipped.get(code).derived or "").strip(), code
    for code in shipped.codes(source="observation"):
        assert shipped.get(code).derived is None, code


def test_codes_filter(shipped: Dictionary) -> None:
    assert sorted(shipped.codes(source="person")) == ["birth_year", "primary_diagnosis", "sex"]
    person_level = set(shipped.codes(level="person"))
    assert person_level == {c for c, (_, level, _) in EXPECTED.items() if level == "person"}
    assert set(shipped.codes(source="derived", level="person")) == {
        "relapse",
        "time_to_relapse",
        "rehospitalization",
        "time_to_rehospitalization",
        "trs",
        "urs",
        "trd",
    }
    assert shipped.codes(type="categorical", source="observation") == ["rtms_protocol"]
    panss = [c for c in shipped.codes() if c.startswith("panss_p") and c[-1].isdigit()]
    assert panss == [f"panss_p{i}" for i in range(1, 8)]


def test_unknown_code_suggests_close_matches(shipped: Dictionary) -> None:
    with pytest.raises(FedpsyError) as info:
        shipped.get("panss_totl")
    assert info.value.code == "unknown_variable"
    assert "'panss_totl'" in info.value.detail
    assert "'panss_total'" in info.value.detail
    assert "panss_total" in info.value.extra["suggestions"]
    with pytest.raises(FedpsyError) as info:
        shipped.get("zzzz")
    assert info.value.code == "unknown_variable"
    assert "'zzzz'" in info.value.detail


# ---------------------------------------------------------------- hashes


def test_hashes_follow_the_spec_and_are_stable(shipped: Dictionary) -> None:
    again = load_dictionary()
    assert again.hash == shipped.hash
    assert again.variable_hashes() == shipped.variable_hashes()
    age = shipped.get("age")
    definition = {
        "code": "age",
        "label": age.label,
        "type": "numeric",
        "unit": "years",
        "min": 12,
        "max": 110,
        "categories": None,
        "open": False,
        "level": "visit",
        "source": "observation",
        "derived": None,
        "description": age.description,
        "plausible_min": 18,
        "plausible_max": 90,
    }
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert age.content_hash == _sha(canonical)
    hashes = sorted(shipped.variable_hashes().values())
    expected = json.dumps({"variables": hashes, "version": "cdm-v1"}, separators=(",", ":"))
    assert shipped.hash == _sha(expected)
    assert len(shipped.hash) == 64 and int(shipped.hash, 16) >= 0


def test_the_hash_is_taken_once_and_a_changed_copy_takes_its_own(shipped: Dictionary) -> None:
    first = shipped.hash
    assert shipped.hash is first  # kept: the dictionary is frozen
    kept = {code: v for code, v in shipped.variables.items() if code != "age"}
    smaller = shipped.model_copy(update={"variables": kept})
    assert smaller.hash == Dictionary(variables=kept).hash != first
    assert shipped.model_copy().hash == first


def test_plausibility_bounds_enter_the_hash_only_where_declared(shipped: Dictionary) -> None:
    """A variable without soft bounds hashes exactly as before they existed (its canonical
    JSON has no plausibility keys); one that declares them hashes them."""
    sex = shipped.get("sex")
    assert "plausible_min" not in sex.definition()
    legacy = {k: v for k, v in sex.model_dump(mode="json").items() if not k.startswith("plaus")}
    assert sex.content_hash == _sha(
        json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    )
    declared = [c for c, v in shipped.variables.items() if v.plausible_min is not None]
    assert declared == ["age"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"plausible_min": 20, "plausible_max": 10}, "plausible_min 20 > plausible_max 10"),
        ({"plausible_min": -1}, "plausible_min: -1 lies outside the range [0, 10]"),
        ({"plausible_max": 11}, "plausible_max: 11 lies outside the range [0, 10]"),
    ],
)
def test_plausibility_bounds_lie_inside_the_range(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Variable.model_validate({**BASE_NUMERIC, **fields})


def test_plausibility_bounds_belong_to_numbers_and_only_count() -> None:
    with pytest.raises(ValueError, match="only numeric and integer variables"):
        Variable.model_validate({**BASE_CATEGORICAL, "plausible_min": 1})
    score = Variable.model_validate({**BASE_NUMERIC, "plausible_min": 2, "plausible_max": 8})
    assert score.check_value(9.5) is None  # within the hard range: loaded
    assert score.implausible(9.5) and score.implausible(1.0) and not score.implausible(8.0)


def test_integral_float_bounds_hash_like_integers() -> None:
    a = Variable(code="x", label="X", type="numeric", min=0, max=10)
    b = Variable.model_validate(
        {"code": "x", "label": "X", "type": "numeric", "min": 0.0, "max": 10.0}
    )
    assert a.content_hash == b.content_hash
    assert isinstance(b.min, int)


BASE_NUMERIC: dict[str, Any] = {
    "code": "score",
    "label": "Score",
    "type": "numeric",
    "unit": "points",
    "min": 0,
    "max": 10,
    "level": "visit",
    "source": "derived",
    "derived": "sum of things",
    "description": "A score.",
}
BASE_CATEGORICAL: dict[str, Any] = {
    "code": "arm",
    "label": "Arm",
    "type": "categorical",
    "categories": ["a", "b"],
    "level": "person",
    "source": "observation",
}
CHANGES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (BASE_NUMERIC, {"code": "score2"}),
    (BASE_NUMERIC, {"label": "Score 2"}),
    (BASE_NUMERIC, {"type": "integer"}),
    (BASE_NUMERIC, {"unit": "mg"}),
    (BASE_NUMERIC, {"unit": None}),
    (BASE_NUMERIC, {"min": 1}),
    (BASE_NUMERIC, {"max": 10.5}),
    (BASE_NUMERIC, {"level": "person"}),
    (BASE_NUMERIC, {"derived": "sum of other things"}),
    (BASE_NUMERIC, {"source": "observation", "derived": None}),
    (BASE_NUMERIC, {"description": "A score!"}),
    (BASE_NUMERIC, {"description": None}),
    (BASE_CATEGORICAL, {"categories": ["b", "a"]}),
    (BASE_CATEGORICAL, {"categories": ["a", "b", "c"]}),
    (BASE_CATEGORICAL, {"open": True}),
    (BASE_NUMERIC, {"plausible_min": 1}),
    (BASE_NUMERIC, {"plausible_max": 9}),
]


@pytest.mark.parametrize(("base", "change"), CHANGES)
def test_any_field_change_changes_the_hashes(base: dict[str, Any], change: dict[str, Any]) -> None:
    before = Variable.model_validate(base)
    after = Variable.model_validate({**base, **change})
    assert after.content_hash != before.content_hash
    other = Variable(code="other", label="Other", type="binary")
    d_before = Dictionary.from_variables([before, other])
    d_after = Dictionary.from_variables([after, other])
    assert d_after.hash != d_before.hash
    assert d_after.variable_hashes()["other"] == d_before.variable_hashes()["other"]


def test_field_order_in_yaml_does_not_change_the_hash(tmp_path: Path) -> None:
    one = _write(tmp_path, "one.yaml", "variables:\n  - {code: x, label: X, type: binary}\n")
    two = _write(
        tmp_path,
        "two.yaml",
        "group: g\nvariables:\n  - {type: binary, label: X, code: x, level: visit}\n",
    )
    assert load_dictionary([one]).hash == load_dictionary([two]).hash


# ---------------------------------------------------------------- extensions

EXTRA = """\
group: site_extras
variables:
  - code: psp_total
    label: Personal and Social Performance scale
    type: integer
    min: 1
    max: 100
  - code: smoker
    label: Current smoker
    type: binary
    level: person
"""


def test_extension_adds_variables(tmp_path: Path, shipped: Dictionary) -> None:
    extended = load_dictionary([_write(tmp_path, "extra.yaml", EXTRA)])
    assert set(extended.variables) == set(shipped.variables) | {"psp_total", "smoker"}
    assert extended.get("psp_total").max == 100
    assert extended.get("smoker").level == "person"
    assert extended.hash != shipped.hash
    hashes = extended.variable_hashes()
    for code, digest in shipped.variable_hashes().items():
        assert hashes[code] == digest
    assert list(extended.variables)[-2:] == ["psp_total", "smoker"]


def test_extend_method_and_its_clash(shipped: Dictionary) -> None:
    extra = Dictionary.from_variables([Variable(code="new_one", label="New", type="binary")])
    extended = shipped.extend(extra)
    assert "new_one" in extended and "new_one" not in shipped
    assert len(extended) == len(shipped) + 1
    assert extended.extend(extra).hash == extended.hash  # the same definitions: no change
    changed = Dictionary.from_variables([Variable(code="new_one", label="Newer", type="binary")])
    with pytest.raises(DictionaryError) as info:
        extended.extend(changed)
    assert info.value.code == "dictionary_clash"
    assert "'new_one': label 'New' → 'Newer'" in info.value.detail


def test_clash_with_shipped_names_both_files(tmp_path: Path) -> None:
    text = "group: g\nvariables:\n  - {code: panss_p1, label: P1, type: integer}\n"
    with pytest.raises(DictionaryError) as info:
        load_dictionary([_write(tmp_path, "extra.yaml", text)])
    assert info.value.code == "dictionary_clash"
    detail = info.value.detail
    assert "extra.yaml: variable 'panss_p1' already defined in psychosis.yaml differently" in detail
    assert "min 1 → unset" in detail and "max 7 → unset" in detail


def test_clash_between_extensions_names_both_files_and_what_differs(tmp_path: Path) -> None:
    first = _write(
        tmp_path, "first.yaml", "variables:\n  - {code: foo, label: Foo, type: integer, max: 5}\n"
    )
    second = _write(
        tmp_path, "second.yaml", "variables:\n  - {code: foo, label: Fu, type: integer, max: 9}\n"
    )
    with pytest.raises(DictionaryError) as info:
        load_dictionary([first, second])
    assert info.value.code == "dictionary_clash"
    assert info.value.exit_code == 2
    assert f"{second}: variable 'foo' already defined in {first} differently" in info.value.detail
    assert "label 'Foo' → 'Fu', max 5 → 9; old → new" in info.value.detail


def test_an_identical_definition_given_again_is_no_change(tmp_path: Path) -> None:
    first = _write(tmp_path, "first.yaml", EXTRA)
    copy = _write(tmp_path, "copy.yaml", EXTRA.replace("group: site_extras", "group: other"))
    once = load_dictionary([first])
    assert load_dictionary([first, first]).hash == once.hash
    twice = load_dictionary([first, copy])
    assert twice.hash == once.hash and list(twice.variables) == list(once.variables)
    shipped = load_dictionary()
    ketamine = shipped.get("ketamine").definition()
    copied = _write(tmp_path, "k.yaml", json.dumps({"variables": [ketamine]}))  # JSON is YAML
    assert load_dictionary([copied]).hash == shipped.hash
    changed = _write(tmp_path, "k2.yaml", json.dumps({"variables": [{**ketamine, "unit": "mg"}]}))
    with pytest.raises(DictionaryError, match=r"'ketamine' already defined in treatments\.yaml"):
        load_dictionary([changed])


# ---------------------------------------------------------------- binary bounds

BINARY = "group: g\nvariables:\n  - {{code: smoker, label: Smoker, type: binary{bounds}}}\n"


@pytest.mark.parametrize(
    "bounds",
    [", min: 0, max: 1", ", min: 0.0, max: 1.0", ", min: 0", ", max: 1", ", min: -1, max: 5"],
)
def test_binary_bounds_holding_0_and_1_are_accepted_and_change_nothing(
    tmp_path: Path, bounds: str
) -> None:
    plain = load_dictionary([_write(tmp_path, "plain.yaml", BINARY.format(bounds=""))])
    bounded = load_dictionary([_write(tmp_path, "bounded.yaml", BINARY.format(bounds=bounds))])
    smoker = bounded.get("smoker")
    # the bounds say no more than the type: dropped, so every reader (ingest rules, domain
    # probes, DP sensitivity) and the content hashes see the same variable as without them
    assert (smoker.min, smoker.max) == (None, None)
    assert smoker == plain.get("smoker")
    assert smoker.content_hash == plain.get("smoker").content_hash
    assert bounded.hash == plain.hash
    assert smoker.check_value(1) is None and smoker.check_value(2) == "binary 0|1"


# ---------------------------------------------------------------- invalid files

HEAD = "group: g\nvariables:\n  - {code: ok_one, label: Fine, type: binary}\n"
INVALID: list[tuple[str, str, list[str]]] = [
    (
        "min_gt_max",
        HEAD + "  - {code: foo, label: Foo, type: numeric, min: 10, max: 5}\n",
        ["variables[1] (code 'foo')", "min 10 > max 5"],
    ),
    (
        "categorical_no_categories",
        HEAD + "  - {code: foo, label: Foo, type: categorical}\n",
        ["variables[1] (code 'foo')", "categories:", "open: true"],
    ),
    (
        "binary_with_categories",
        HEAD + "  - {code: foo, label: Foo, type: binary, categories: [a, b]}\n",
        ["variables[1] (code 'foo')", "categories:", "binary"],
    ),
    (
        "numeric_with_categories",
        HEAD + "  - {code: foo, label: Foo, type: numeric, categories: [a]}\n",
        ["variables[1] (code 'foo')", "categories:", "numeric"],
    ),
    (
        "integer_with_categories",
        HEAD + "  - {code: foo, label: Foo, type: integer, categories: [a]}\n",
        ["variables[1] (code 'foo')", "categories:", "integer"],
    ),
    (
        "derived_without_rule",
        HEAD + "  - {code: foo, label: Foo, type: binary, source: derived}\n",
        ["variables[1] (code 'foo')", "derived:", "rule"],
    ),
    (
        "bad_code",
        HEAD + "  - {code: Foo-1, label: Foo, type: binary}\n",
        ["variables[1] (code 'Foo-1')", "code:"],
    ),
    (
        "long_code",
        HEAD + f"  - {{code: {'a' * 65}, label: Foo, type: binary}}\n",
        ["variables[1] (code 'aaaa", "code:", "64"],
    ),
    (
        "unknown_field",
        HEAD + "  - {code: foo, label: Foo, type: binary, colour: red}\n",
        ["variables[1] (code 'foo')", "colour:", "unknown field"],
    ),
    (
        "bad_type",
        HEAD + "  - {code: foo, label: Foo, type: numberic}\n",
        ["variables[1] (code 'foo')", "type:", "'numberic'"],
    ),
    (
        "missing_label",
        HEAD + "  - {code: foo, type: binary}\n",
        ["variables[1] (code 'foo')", "label:", "missing"],
    ),
    (
        "bad_level",
        HEAD + "  - {code: foo, label: Foo, type: binary, level: site}\n",
        ["variables[1] (code 'foo')", "level:"],
    ),
    (
        "non_numeric_min",
        HEAD + "  - {code: foo, label: Foo, type: numeric, min: low}\n",
        ["variables[1] (code 'foo')", "min:", "number"],
    ),
    (
        "fractional_integer_bound",
        HEAD + "  - {code: foo, label: Foo, type: integer, min: 0.5}\n",
        ["variables[1] (code 'foo')", "min:", "whole number"],
    ),
    (
        "yes_no_categories",
        HEAD + "  - {code: foo, label: Foo, type: categorical, categories: [yes, no]}\n",
        ["variables[1] (code 'foo')", "categories:", "quote"],
    ),
    (
        "repeated_category",
        HEAD + "  - {code: foo, label: Foo, type: categorical, categories: [a, a]}\n",
        ["variables[1] (code 'foo')", "categories:", "'a'"],
    ),
    (
        "open_not_categorical",
        HEAD + "  - {code: foo, label: Foo, type: binary, open: true}\n",
        ["variables[1] (code 'foo')", "open:"],
    ),
    (
        "person_source_visit_level",
        HEAD + "  - {code: foo, label: Foo, type: binary, source: person}\n",
        ["variables[1] (code 'foo')", "level:"],
    ),
    (
        "duplicate_code",
        HEAD + "  - {code: ok_one, label: Again, type: binary}\n",
        ["variables[1] (code 'ok_one')", "code:", "variables[0]"],
    ),
    (
        "reserved_site",
        HEAD + "  - {code: site, label: Site, type: categorical, open: true}\n",
        ["variables[1] (code 'site')", "code:", "reserved"],
    ),
    (
        "extension_person_source",
        HEAD + "  - {code: foo, label: Foo, type: binary, source: person, level: person}\n",
        ["variables[1] (code 'foo')", "source:", "person table"],
    ),
    (
        "binary_min_excludes_0",
        HEAD + "  - {code: foo, label: Foo, type: binary, min: 1, max: 5}\n",
        ["variables[1] (code 'foo')", "min: 1 excludes 0", "binary variable takes the values"],
    ),
    (
        "binary_fractional_min",
        HEAD + "  - {code: foo, label: Foo, type: binary, min: 0.5}\n",
        ["variables[1] (code 'foo')", "min: 0.5 excludes 0"],
    ),
    (
        "binary_max_excludes_1",
        HEAD + "  - {code: foo, label: Foo, type: binary, min: 0, max: 0.5}\n",
        ["variables[1] (code 'foo')", "max: 0.5 excludes 1"],
    ),
    (
        "binary_bound_not_a_number",
        HEAD + "  - {code: foo, label: Foo, type: binary, min: no}\n",
        ["variables[1] (code 'foo')", "min:", "number"],
    ),
    ("entry_not_mapping", HEAD + "  - just a string\n", ["variables[1]", "mapping"]),
    (
        "duplicate_key",
        HEAD + "  - code: foo\n    label: Foo\n    type: binary\n    label: Bar\n",
        ["line 7", "'label'", "twice"],
    ),
    (
        "yaml_syntax",
        "group: g\nvariables:\n  - {code: foo, label: [unclosed\n",
        ["YAML syntax error", "line"],
    ),
    ("missing_variables", "group: g\nvars: []\n", ["'vars'", "variables"]),
    ("no_variables_key", "group: g\n", ["'variables'", "missing"]),
    ("variables_not_list", "group: g\nvariables: {code: foo}\n", ["variables:", "list"]),
    ("empty_file", "", ["empty"]),
    ("top_is_list", "- code: foo\n", ["mapping", "top"]),
    ("group_not_string", "group: [a]\nvariables: []\n", ["group:", "string"]),
]


@pytest.mark.parametrize(
    ("text", "fragments"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_extension_is_named(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = _write(tmp_path, "extra.yaml", text)
    with pytest.raises(DictionaryError) as info:
        load_dictionary([path])
    error = info.value
    assert error.code == "dictionary_invalid"
    assert error.exit_code == 2
    for line in error.detail.splitlines():
        assert line.startswith(f"{path}: "), line
    for fragment in fragments:
        assert fragment in error.detail, (fragment, error.detail)


def test_every_problem_of_a_file_is_reported(tmp_path: Path) -> None:
    text = (
        "variables:\n"
        "  - {code: a, label: A, type: numeric, min: 3, max: 1}\n"
        "  - {code: b, label: B, type: categorical}\n"
        "  - {code: c, label: C, type: binary, colour: red, source: derived}\n"
    )
    with pytest.raises(DictionaryError) as info:
        load_dictionary([_write(tmp_path, "extra.yaml", text)])
    lines = info.value.detail.splitlines()
    assert any("variables[0] (code 'a'): min 3 > max 1" in line for line in lines)
    assert any("variables[1] (code 'b'): categories:" in line for line in lines)
    assert any("variables[2] (code 'c'): colour:" in line for line in lines)


def test_missing_extension_file(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError) as info:
        load_dictionary([tmp_path / "nowhere.yaml"])
    assert "nowhere.yaml" in info.value.detail and "not found" in info.value.detail


def test_an_open_categorical_may_list_known_categories() -> None:
    variable = Variable(
        code="scanner", label="Scanner", type="categorical", open=True, categories=("a",)
    )
    assert variable.check_value("zzz") is None


def test_models_are_frozen_and_strict() -> None:
    variable = Variable(code="x", label="X", type="binary")
    with pytest.raises(ValueError, match="frozen"):
        variable.label = "Y"  # type: ignore[misc]
    with pytest.raises(ValueError, match="key 'y' holds variable 'x'"):
        Dictionary(variables={"y": variable})
    with pytest.raises(DictionaryError) as info:
        Dictionary.from_variables([variable, variable])
    assert info.value.code == "dictionary_clash"


# ---------------------------------------------------------------- value rules


def test_check_value_rules(shipped: Dictionary) -> None:
    p1 = shipped.get("panss_p1")
    assert p1.check_value(4) is None
    assert p1.check_value(4.0) is None
    assert p1.check_value(4.5) == "type integer"
    assert p1.check_value("4") == "type integer"
    assert p1.check_value(True) == "type integer"
    assert p1.check_value(0) == "min 1"
    assert p1.check_value(8) == "max 7"
    assert p1.check_value(None) is None
    assert p1.check_value(math.nan) is None

    age = shipped.get("age")
    assert age.check_value(34.5) is None
    assert age.check_value(11.9) == "min 12"
    assert age.check_value(110.01) == "max 110"
    assert age.check_value("old") == "type numeric"
    assert age.check_value(math.inf) == "type numeric"

    sex = shipped.get("sex")
    assert sex.check_value("F") is None
    assert sex.check_value("f") == "categories F|M"
    assert sex.check_value(1) == "type categorical"

    trs = shipped.get("trs")
    for good in (0, 1, True, False, 1.0):
        assert trs.check_value(good) is None
    for bad in (2, -1, 0.5, "1", "yes"):
        assert trs.check_value(bad) == "binary 0|1"

    assert shipped.get("mrs_scanner").check_value("siemens_prisma_01") is None
    assert shipped.get("mrs_scanner").check_value(3) == "type categorical"
    fractional = Variable(code="f", label="F", type="numeric", min=0.5, max=2.25)
    assert fractional.check_value(0.4) == "min 0.5"
    assert fractional.check_value(3) == "max 2.25"
