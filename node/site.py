"""One node, opened from its directory: config, dictionary, store. What the CLI and the API
hold on to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from node.auth.identity import create_identity
from node.config import (
    NodeConfig,
    adopt_extensions,
    init_node_dir,
    load_config,
    node_dictionary,
    save_config,
)
from node.data.columnar import refresh_columnar
from node.data.layer_at_hand import write_layers
from node.ingest import IngestReport, files_to_load, ingest, total_rows
from node.ingest.context import Progress
from node.ingest.mapping import load_mapping
from node.layout import NodeDir
from node.privacy.policy import write_default_policy
from node.status import remember_dictionary_hash, store_status
from node.store.engine import open_engine
from node.store.schema import upgrade
from schemas.dictionary import Dictionary
from schemas.errors import ErrorCode, FedpsyError


@dataclass
class NodeSite:
    """An opened node directory."""

    dir: NodeDir
    config: NodeConfig
    dictionary: Dictionary
    engine: Engine

    @classmethod
    def create(cls, root: Path, site: str, database_url: str | None) -> NodeSite:
        init_node_dir(root, site, database_url)
        node = cls.open(root)
        write_default_policy(node.dir.policy)
        create_identity(node.dir)
        return node

    @classmethod
    def open(cls, root: Path, extensions: tuple[Path, ...] = ()) -> NodeSite:
        node_dir = NodeDir(root).require()
        config = adopt_extensions(node_dir, load_config(node_dir), extensions)
        dictionary = node_dictionary(node_dir, config)
        engine = open_engine(config.store_url(node_dir))
        try:
            upgrade(engine)
        except Exception as exc:  # driver errors: say which store and what to check
            raise FedpsyError(
                f"cannot open the store at {redact(config.store_url(node_dir))}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                code=ErrorCode.STORE_ERROR,
            ) from exc
        node = cls(node_dir, config, dictionary, engine)
        node.remember_dictionary_hash()
        return node

    def remember_dictionary_hash(self) -> None:
        """Keep the dictionary's hash for ``fedpsy node status`` (:func:`quick_status`)."""
        remember_dictionary_hash(
            self.dir.root, list(self.config.dictionary_extensions), self.dictionary.hash
        )

    def record_extension(self, name: str) -> None:
        """Record an extension file of ``DIR/dictionary`` and reload the dictionary."""
        if name not in self.config.dictionary_extensions:
            self.config = self.config.model_copy(
                update={"dictionary_extensions": (*self.config.dictionary_extensions, name)}
            )
            save_config(self.dir, self.config)
        self.dictionary = node_dictionary(self.dir, self.config)
        self.remember_dictionary_hash()

    def close(self) -> None:
        """Release the store's connections."""
        self.engine.dispose()

    def __enter__(self) -> NodeSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store_url_redacted(self) -> str:
        return redact(self.config.store_url(self.dir))

    def rows_to_ingest(self, path: Path, table: str | None) -> int:
        return total_rows(files_to_load(path, table))

    def ingest(
        self,
        path: Path,
        table: str | None = None,
        mapping: Path | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        report = ingest(self.engine, self.dictionary, path, table, load_mapping(mapping), progress)
        content, report.content = report.content, None
        if not report.unchanged:
            site, folder = self.config.site, self.dir.columnar
            if (
                content is None
                or write_layers(self.engine, site, self.dictionary, folder, content) is None
            ):
                refresh_columnar(self.engine, site, self.dictionary, folder)
        return report

    def status(self) -> dict[str, Any]:
        return store_status(self.engine, self.config.site, self.dictionary.hash)


def redact(url: str) -> str:
    """A store URL with any password hidden."""
    return make_url(url).render_as_string(hide_password=True)
