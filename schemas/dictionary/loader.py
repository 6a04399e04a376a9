"""Load the shipped data dictionary and a site's extension files.

Every ``*.yaml`` file shipped in this package holds ``{group: NAME, variables: [...]}``;
they are read in sorted file-name order, then the extension files in the order given.
Every problem is reported with the file, the variable (index and code) and the field,
e.g. ``extra.yaml: variables[3] (code 'foo'): min 10 > max 5``.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.dictionary.model import Dictionary, Variable
from schemas.errors import DictionaryError, ErrorCode

logger = logging.getLogger(__name__)

PACKAGE = "schemas.dictionary"
TOP_LEVEL_FIELDS = ("group", "variables")
RESERVED_CODES = {"site": "the site pseudo-variable every node adds"}


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""


def _construct_unique_mapping(
    loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Hashable, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key!r} is given twice",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def load_dictionary(extensions: Sequence[Path] = ()) -> Dictionary:
    """The shipped dictionary (cdm-v1) extended by ``extensions``, in order.

    Raises :class:`~schemas.errors.DictionaryError`: code ``dictionary_invalid`` for a
    file that cannot be read or holds an invalid definition, ``dictionary_clash`` for a
    code two files define differently (an identical definition given again is no change).
    """
    variables: dict[str, Variable] = {}
    origins: dict[str, str] = {}
    for name, text in _shipped_files():
        _add(variables, origins, name, parse_dictionary_text(text, name))
    for path in extensions:
        name = str(path)
        parsed = parse_dictionary_text(_read_extension(Path(path)), name)
        problems = [
            f"{name}: variables[{index}] (code {variable.code!r}): source: person is kept "
            "for the person table's own columns; use source: observation"
            for index, variable in enumerate(parsed)
            if variable.source == "person"
        ]
        if problems:
            raise DictionaryError("\n".join(problems), extra={"file": name, "problems": problems})
        _add(variables, origins, name, parsed)
    dictionary = Dictionary(variables=variables)
    logger.debug(
        "loaded dictionary %s: %d variables, %d extension file(s), hash %s",
        dictionary.version,
        len(dictionary),
        len(extensions),
        dictionary.hash,
    )
    return dictionary


def _shipped_files() -> list[tuple[str, str]]:
    """(file name, text) of every ``*.yaml`` shipped in this package, sorted by name."""
    folder = resources.files(PACKAGE)
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".yaml") and entry.is_file()),
        key=lambda entry: entry.name,
    )
    return [(entry.name, entry.read_text(encoding="utf-8")) for entry in entries]


def shipped_sections() -> dict[str, frozenset[str]]:
    """The shipped dictionary's sections (each file's ``group``) and their variable codes."""
    sections: dict[str, set[str]] = {}
    for name, text in _shipped_files():
        document = _parse_yaml(text, name)
        group = document.get("group") if isinstance(document, dict) else None
        codes = {variable.code for variable in parse_dictionary_text(text, name)}
        sections.setdefault(str(group or name.removesuffix(".yaml")), set()).update(codes)
    return {group: frozenset(codes) for group, codes in sections.items()}


def _read_extension(path: Path) -> str:
    if not path.exists():
        raise DictionaryError(f"{path}: file not found; give the path of a dictionary YAML file")
    if not path.is_file():
        raise DictionaryError(f"{path}: not a file; give the path of a dictionary YAML file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DictionaryError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DictionaryError(f"{path}: cannot be read ({exc.strerror})") from exc


def _add(
    variables: dict[str, Variable], origins: dict[str, str], name: str, parsed: list[Variable]
) -> None:
    """Add ``parsed`` (from file ``name``); a variable already defined identically (same
    content hash, e.g. the same extension given again) is no change, one defined
    differently is a ``dictionary_clash`` naming both files and the fields that differ."""
    clashes = [
        f"{name}: variable {variable.code!r} already defined in {origins[variable.code]} "
        f"differently ({variables[variable.code].differences(variable)}; old → new); "
        "use a new code for a new variable"
        for variable in parsed
        if variable.code in variables
        and variables[variable.code].content_hash != variable.content_hash
    ]
    if clashes:
        raise DictionaryError(
            "\n".join(clashes),
            code=ErrorCode.DICTIONARY_CLASH,
            extra={"file": name, "problems": clashes},
        )
    for variable in parsed:
        if variable.code not in variables:
            variables[variable.code] = variable
            origins[variable.code] = name


def parse_dictionary_text(text: str, name: str) -> list[Variable]:
    """The variables of one dictionary file's ``text``; ``name`` prefixes every error."""
    document = _parse_yaml(text, name)
    entries = _variable_entries(document, name)
    variables: list[Variable] = []
    problems: list[str] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = _where(name, index, entry)
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping of fields, got {_kind(entry)}")
            continue
        try:
            variable = Variable.model_validate(entry)
        except ValidationError as exc:
            problems.extend(f"{where}: {_describe(error)}" for error in exc.errors())
            continue
        if variable.code in RESERVED_CODES:
            problems.append(
                f"{where}: code: {variable.code!r} is reserved for {RESERVED_CODES[variable.code]}"
            )
        elif variable.code in first_index:
            problems.append(
                f"{where}: code: {variable.code!r} is already defined at "
                f"variables[{first_index[variable.code]}] of the same file"
            )
        else:
            first_index[variable.code] = index
            variables.append(variable)
    if problems:
        raise DictionaryError("\n".join(problems), extra={"file": name, "problems": problems})
    return variables


def _parse_yaml(text: str, name: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "unreadable YAML"
        raise DictionaryError(f"{name}: YAML syntax error{place}: {problem}") from exc
    except yaml.YAMLError as exc:
        raise DictionaryError(f"{name}: YAML syntax error: {exc}") from exc


def _variable_entries(document: object, name: str) -> list[object]:
    if document is None:
        raise DictionaryError(f"{name}: the file is empty; expected 'group' and 'variables'")
    if not isinstance(document, dict):
        raise DictionaryError(
            f"{name}: expected a mapping with 'group' and 'variables' at the top, "
            f"got {_kind(document)}"
        )
    unknown = [key for key in document if key not in TOP_LEVEL_FIELDS]
    if unknown:
        raise DictionaryError(
            f"{name}: unknown top-level field(s) {', '.join(repr(k) for k in unknown)} "
            f"(allowed: {', '.join(TOP_LEVEL_FIELDS)})"
        )
    if "group" in document and not isinstance(document["group"], str):
        raise DictionaryError(f"{name}: group: must be a string, got {_kind(document['group'])}")
    if "variables" not in document:
        raise DictionaryError(f"{name}: the 'variables' key is missing; list the variables there")
    entries = document["variables"]
    if not isinstance(entries, list):
        raise DictionaryError(f"{name}: variables: must be a list, got {_kind(entries)}")
    return entries


def _where(name: str, index: int, entry: object) -> str:
    code = entry.get("code") if isinstance(entry, dict) else None
    return f"{name}: variables[{index}]" + (f" (code {code!r})" if code is not None else "")


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _describe(error: ErrorDetails) -> str:
    field = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown field (allowed: {', '.join(Variable.model_fields)})"
    if error["type"] == "missing":
        return f"{field}: required field is missing"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] != "value_error":
        message = f"{message[:1].lower()}{message[1:]} (got {error['input']!r})"
    return f"{field}: {message}" if field else message
