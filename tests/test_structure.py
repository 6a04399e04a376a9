"""The code's shape, kept by tests: one-way imports, small modules, one list per thing.

* no import cycle among fedpsy's modules, counting imports inside functions;
* no first-party import inside a function unless a ``# deferred:`` comment just above says
  why (the import must wait for something, e.g. Flower's environment, or is too heavy for
  commands that do not need it; the cycle check counts it all the same);
* importing the command line (``fedpsy.cli``) loads none of the heavy libraries: each
  command imports what it needs, so ``fedpsy --help`` starts fast (``make bench`` times it);
* no module over 400 lines, and ``node/`` holds at most a dozen top-level modules;
* the training app's hash and entry points stay where sites approved them;
* every :class:`~schemas.errors.ErrorCode` is used in the code and documented in
  ``docs/ERRORS.md`` with its exit and HTTP status.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.analyses.registry import ANALYSES
from node.privacy.policy import KNOWN_ANALYSES
from node.site import NodeSite
from schemas.analyses import ANALYSIS_NAMES
from schemas.errors import CATALOG, ErrorCode
from schemas.training.bundle import CLIENT_APP, SERVER_APP, app_hash

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "node", "coordinator", "fedpsy")
STRICT = PACKAGES
HEAVY = (
    "pandas",
    "numpy",
    "scipy",
    "sqlalchemy",
    "alembic",
    "flwr",
    "fastapi",
    "uvicorn",
    "httpx",
    "pydantic",
    "yaml",
    "cryptography",
    "coordinator",
    "node",
)
"""What ``import fedpsy.cli`` must not import (nor ``fedpsy node status`` on SQLite)."""


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported first-party module, line, inside a function) for each import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inner |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            module = _resolve(target)
            if module is not None and module != name:
                yield module, node.lineno, id(node) in inner


def _resolve(target: str) -> str | None:
    """The fedpsy module ``target`` names (a module, or a name in a module), if any."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, _line, _inner in _imports(name, path):
            if not name.startswith(module + "."):  # a package's own parent package is no edge
                graph[name].add(module)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (modules in order), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _deferred(path: Path, line: int) -> bool:
    """Whether the comment lines just above ``line`` of ``path`` say why it is deferred."""
    lines = path.read_text().splitlines()[: line - 1]
    while lines and lines[-1].strip().startswith(("#", "from ", "import ")):
        if lines[-1].strip().startswith("# deferred:"):
            return True
        lines.pop()
    return False


def test_no_first_party_import_inside_a_function() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for name, path in MODULES.items()
        if name.split(".")[0] in STRICT
        for module, line, inner in _imports(name, path)
        if inner and not _deferred(path, line)
    ]
    assert not found, "imports inside functions:\n" + "\n".join(found)


def _loaded_by(code: str, *args: str) -> set[str]:
    """The top-level packages of :data:`HEAVY` loaded by running ``code`` in a fresh
    interpreter."""
    probe = (
        f"{code}\nimport sys\nloaded = {{m.split('.')[0] for m in sys.modules}}\n"
        f"print(*sorted(loaded & set({HEAVY!r})), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    )
    return set(done.stderr.splitlines()[-1].split())


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    assert _loaded_by("import fedpsy.cli") == set()


def test_node_status_of_a_sqlite_node_loads_no_heavy_library(tmp_path: Path) -> None:
    NodeSite.create(tmp_path / "node", "oslo", None).close()
    run = (
        "import sys\nfrom fedpsy.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert _loaded_by(run, "node", "status", str(tmp_path / "node")) == {"node"}


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long


def test_node_holds_at_most_a_dozen_top_level_modules() -> None:
    top = sorted(p.name for p in (ROOT / "node").glob("*.py"))
    assert len(top) <= 12, top


def test_no_formatter_opt_outs() -> None:
    marked = [
        str(path.relative_to(ROOT))
        for path in [
            *MODULES.values(),
            *(ROOT / "tests").rglob("*.py"),
            *(ROOT / "bench").rglob("*.py"),
        ]
        if "fmt: " + "skip" in path.read_text()
    ]
    assert not marked, marked


def _code_uses() -> set[str]:
    used: set[str] = set()
    for path in MODULES.values():
        text = path.read_text()
        if path == ROOT / "schemas" / "errors.py":  # its exception classes, not the catalog
            text = text[text.index("class FedpsyError") :]
        used |= set(re.findall(r"\bErrorCode\.([A-Z_]+)\b", text))
    return used


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_error_code_is_used_and_documented(code: ErrorCode) -> None:
    assert code.name in _code_uses(), f"{code.value} is never raised"
    kind = CATALOG[code]
    row = f"| `{code.value}` | {kind.http_status} | {kind.message} |"
    doc = (ROOT / "docs" / "ERRORS.md").read_text()
    assert row in doc, f"docs/ERRORS.md lacks the row {row}"
    section = doc[: doc.index(row)].rpartition("\n## ")[2]
    assert f"(exit {kind.exit_code})" in section.splitlines()[0]


def test_every_documented_code_exists() -> None:
    documented = re.findall(r"^\| `(\w+)` \|", (ROOT / "docs" / "ERRORS.md").read_text(), re.M)
    assert sorted(documented) == sorted(c.value for c in ErrorCode)


def test_the_training_app_hash_and_its_entry_points_did_not_move() -> None:
    """Sites approve the app hash, which names these entry points: moving them (or
    changing the hash) makes every site approve again."""
    assert app_hash() == "3d8da03f99f100256e07ce1b317dddedd5a6edc11fff8e86d56a2045d1721894"
    for entry in (SERVER_APP, CLIENT_APP):
        module, _, attribute = entry.partition(":")
        assert getattr(importlib.import_module(module), attribute) is not None, entry


def test_every_analysis_of_the_schema_has_an_algorithm_and_is_allowed_by_default() -> None:
    """The analyses are listed once (``schemas.analyses.ANALYSIS_MODELS``): the coordinator's
    algorithms cover exactly those, and a node's default policy allows each."""
    assert set(ANALYSES) == set(ANALYSIS_NAMES)
    assert set(ANALYSIS_NAMES) <= set(KNOWN_ANALYSES) == {*ANALYSIS_NAMES, "catalog"}
