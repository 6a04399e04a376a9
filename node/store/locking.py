"""Write transactions that serialize with every other writer of one table.

The audit log and the differencing guard read the table and then write depending on
what they read (the next sequence number; whether a cohort is too close to an answered
one). Two processes doing that at once must not interleave, so the read and the write
run in one transaction holding a write lock taken *before* the read:

* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock at once (the driver would
  otherwise start the transaction only at the first write, after the read). This relies
  on the driver's default deferred transactions, as ``schemas.engine`` configures it.
* PostgreSQL: ``LOCK TABLE … IN SHARE ROW EXCLUSIVE MODE`` conflicts with itself and with
  every write, but not with plain reads, so readers (``verify``, listings) never wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, Table

from node.store.tables import answered_cohort, audit_entry

RELEASE = (answered_cohort, audit_entry)
"""The tables a released answer writes under their locks (the differencing guard's
memory, the audit log), in the order every transaction taking both locks them."""


@contextmanager
def locked(engine: Engine, *tables: Table) -> Iterator[Connection]:
    """A connection in a transaction holding the write lock on every one of ``tables``
    (taken in the order given: callers taking several name them in one order, the
    order of :data:`RELEASE`); commits on exit."""
    backend = engine.dialect.name
    with engine.begin() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif backend == "postgresql":
            for table in tables:
                name = engine.dialect.identifier_preparer.format_table(table)
                conn.exec_driver_sql(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")
        yield conn
