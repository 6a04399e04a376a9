"""Fixtures of the attack suite: the planted data once, a fresh consortium per test.

The differencing guard remembers every cohort a node answered, so an attack that relies on
a node's empty memory gets its own nodes: :func:`fresh` builds a new consortium (real
nodes served over HTTP, a real coordinator) in the test's temporary directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.attacks.support import Consortium, SiteData, consortium, ingested_nodes, make_sites

Build = Callable[..., Consortium]


@pytest.fixture(scope="session")
def site_data() -> dict[str, SiteData]:
    """The planted consortium's files (generated once)."""
    return make_sites()


@pytest.fixture(scope="session")
def templates(
    tmp_path_factory: pytest.TempPathFactory, site_data: dict[str, SiteData]
) -> dict[str, Path]:
    """Each site's node, ingested once; every consortium starts from a copy."""
    return ingested_nodes(tmp_path_factory.mktemp("templates"), site_data)


@pytest.fixture
def build(
    tmp_path: Path, site_data: dict[str, SiteData], templates: dict[str, Path]
) -> Iterator[Build]:
    """``build(sites=None)``: a new consortium with empty node memories (torn down after)."""
    with ExitStack() as stack:
        count = 0

        def make(sites: list[str] | None = None) -> Consortium:
            nonlocal count
            count += 1
            root = tmp_path / f"c{count}"
            return stack.enter_context(consortium(root, site_data, sites, templates))

        yield make


@pytest.fixture
def fresh(build: Build) -> Consortium:
    """A new two-site consortium (sites ``a`` with the target, and ``b``)."""
    return build()
