"""Database engine, sessions and the ORM base shared by every domain package.

One :class:`Base` with a naming convention, so constraint names are the same on SQLite and
PostgreSQL and migrations can refer to them. :func:`make_engine` configures SQLite for a real
workload: foreign keys on, WAL journal, a busy timeout, and ``BEGIN IMMEDIATE`` so that write
transactions are serialised up front instead of failing on lock upgrade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Table, bindparam, create_engine, event, insert, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Shanhai table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the platform's per-dialect settings."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory; sessions do not expire objects on commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that is rolled back on error and always closed.

    Services commit themselves; this only guarantees that nothing half-done survives an exception.
    """
    session = factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: How many ids :meth:`DeferredWrites.reserve_id` draws from a sequence at once.
ID_BLOCK = 16
_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")
#: ``session.info`` key of the transaction's :class:`DeferredWrites`, when it has one.
DEFERRED_WRITES = "shanhai.deferred_writes"


@dataclass
class _Change:
    table: Table
    row_id: int
    values: dict[str, Any]
    undo: Callable[[], None]
    add: bool  # True: values are deltas (col = col + Δ); False: new values (col = v)


class DeferredWrites:
    """Writes that nothing in the transaction reads back from the database, made together just before its commit.

    A batch of order-entry commands (ADR 015) collects here the journal rows, idempotency records, cash
    entries and registry movements of all its commands and writes them with one multi-row ``INSERT`` per
    table (in the order the tables were first used, rows in the order they came), the balance changes of the
    rows it has locked (cash accounts) as ``UPDATE … SET col = col + Δ`` and the changes of rows only it
    writes (its orders) as ``UPDATE … SET col = last value``, one executemany per table and column set —
    instead of a statement and an ORM unit of work per command. The in-memory objects carry the current
    values meanwhile (set without marking them dirty) and must stay referenced: the undo hooks keep them.
    A command that fails drops its own writes: :meth:`mark` before it, :meth:`undo` after (which also puts
    the in-memory values back). Tables are written referenced-first (foreign-key order of their metadata).
    """

    def __init__(self) -> None:
        self._rows: list[tuple[Table, dict[str, Any]]] = []
        self._changes: list[_Change] = []
        self._ids: dict[str, list[int]] = {}  # ids drawn from each table's sequence, not used yet

    def add(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        """Queue rows for ``table``."""
        self._rows.extend((table, row) for row in rows)

    def increment(self, table: Table, row_id: int, deltas: dict[str, int], undo: Callable[[], None]) -> None:
        """Queue ``col = col + delta`` for one row; ``undo`` reverts the caller's in-memory copy."""
        self._changes.append(_Change(table, row_id, deltas, undo, add=True))

    def assign(self, table: Table, row_id: int, values: dict[str, Any], undo: Callable[[], None]) -> None:
        """Queue ``col = value`` for one row (the last value queued wins); ``undo`` reverts the in-memory copy."""
        self._changes.append(_Change(table, row_id, values, undo, add=False))

    def reserve_id(self, session: Session, table: Table) -> int | None:
        """Return a new id for a row of ``table`` from its sequence (PostgreSQL), drawn ``ID_BLOCK`` at a time.

        ``None`` where ids come only from the insert itself (SQLite): the caller inserts the row now. Ids
        drawn but not used (a refused command, a rolled-back batch) are gaps, as sequences always leave.
        """
        if session.get_bind().dialect.name != "postgresql":
            return None
        pool = self._ids.setdefault(table.name, [])
        if not pool:
            pool.extend(session.scalars(_NEXT_IDS, {"table": table.name, "n": ID_BLOCK}))
            pool.reverse()
        return pool.pop()

    def mark(self) -> tuple[int, int]:
        """Return a position to :meth:`undo` to."""
        return len(self._rows), len(self._changes)

    def undo(self, mark: tuple[int, int]) -> None:
        """Drop every write queued after ``mark``, newest first, reverting in-memory values."""
        rows, changes = mark
        del self._rows[rows:]
        for change in reversed(self._changes[changes:]):
            change.undo()
        del self._changes[changes:]

    def write(self, session: Session) -> None:
        """Make the queued writes (one executemany per table and column set) and forget them."""
        tables: dict[Table, list[dict[str, Any]]] = {}
        for table, row in self._rows:
            tables.setdefault(table, []).append(row)
        deltas: dict[tuple[Table, int], dict[str, Any]] = {}
        values: dict[tuple[Table, int], dict[str, Any]] = {}
        for change in self._changes:
            row = (deltas if change.add else values).setdefault((change.table, change.row_id), {})
            for column, value in change.values.items():
                row[column] = row.get(column, 0) + value if change.add else value
        self._rows.clear()
        self._changes.clear()
        # Referenced tables first (an order's row before its trades'), whatever order they were first used in.
        for table in sorted(tables, key=_dependency_rank):
            session.execute(insert(table), tables[table])
        for add, changed in ((True, deltas), (False, values)):
            # Deltas of one table go in one executemany: the columns any row changes, + 0 where a row does not.
            touched: dict[Table, set[str]] = {}
            if add:
                for (table, _), row in changed.items():
                    touched.setdefault(table, set()).update(c for c, v in row.items() if v)
            updates: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
            for (table, row_id), row in changed.items():
                if add and not any(row.values()):
                    continue
                columns = tuple(sorted(touched[table])) if add else tuple(sorted(row))
                if columns:
                    params = {"_id": row_id, **{f"_v_{c}": row.get(c, 0) for c in columns}}
                    updates.setdefault((table, columns), []).append(params)
            for (table, columns), params_list in updates.items():
                new = {c: table.c[c] + bindparam(f"_v_{c}") if add else bindparam(f"_v_{c}") for c in columns}
                session.execute(update(table).where(table.c.id == bindparam("_id")).values(new), params_list)


def _dependency_rank(table: Table) -> int:
    """Return a table's place in its metadata's foreign-key order (referenced tables come first)."""
    ranks = _RANKS.get(table.metadata)
    if ranks is None:
        ranks = _RANKS[table.metadata] = {t: i for i, t in enumerate(table.metadata.sorted_tables)}
    return ranks.get(table, len(ranks))


_RANKS: dict[MetaData, dict[Table, int]] = {}


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert append-only rows now, or at the end of the transaction when it defers them (:class:`DeferredWrites`)."""
    deferred: DeferredWrites | None = session.info.get(DEFERRED_WRITES)
    if deferred is not None:
        deferred.add(table, rows)
    elif rows:
        session.execute(insert(table), rows)


_INSERTS: dict[type, tuple[Table, Any, list[tuple[str, Any]], str]] = {}
#: ``session.info`` key of the objects :func:`add_now` inserted in the session's current transaction.
_ADDED_NOW = "shanhai.added_now"


@event.listens_for(Session, "after_rollback")
def _forget_added_now(session: Session) -> None:
    """Expunge what :func:`add_now` inserted in a transaction that rolled back, as the ORM does with its own."""
    for obj in session.info.pop(_ADDED_NOW, ()):
        if obj in session:
            session.expunge(obj)


@event.listens_for(Session, "after_commit")
def _keep_added_now(session: Session) -> None:
    session.info.pop(_ADDED_NOW, None)


def add_now(session: Session, obj: Any) -> None:
    """Give one new ORM object its id and its row without an ORM flush, and attach it as persistent.

    The hot paths of order entry (an order, a trade) need the new row's id at once; a flush per object
    runs the ORM's whole unit of work (dependency sort, history of every attribute) to send one statement.
    Here the row is one Core ``INSERT … RETURNING id`` — or, in a transaction that defers its writes on
    PostgreSQL (an order-entry batch, :class:`DeferredWrites`), an id drawn from the table's sequence and
    the row queued with the batch's others (ADR 035). Columns the object leaves unset get their scalar
    default, else NULL, as an ORM insert would; every column is then part of the object's loaded state, so
    reading any of them sends no query. A rollback expunges the object, as the ORM does with its own.
    """
    cls = type(obj)
    plan = _INSERTS.get(cls)
    if plan is None:
        mapper = sa_inspect(cls)
        table = mapper.local_table
        (key,) = (prop.key for prop in mapper.column_attrs if prop.columns[0].primary_key)
        columns = [(prop.key, prop.columns[0]) for prop in mapper.column_attrs if not prop.columns[0].primary_key]
        plan = _INSERTS[cls] = (table, insert(table).returning(table.primary_key.columns[0]), columns, key)
    table, statement, columns, key = plan
    values = {}
    for name, column in columns:
        if name not in obj.__dict__:
            default = column.default
            setattr(obj, name, default.arg if default is not None and default.is_scalar else None)
        values[column.key] = obj.__dict__[name]
    deferred: DeferredWrites | None = session.info.get(DEFERRED_WRITES)
    new_id = deferred.reserve_id(session, table) if deferred is not None else None
    if new_id is None:
        new_id = session.execute(statement, values).scalar_one()
    else:  # an order-entry batch on PostgreSQL: the row goes in with the batch's others, at its end (ADR 035)
        assert deferred is not None
        deferred.add(table, [{**values, table.primary_key.columns[0].key: new_id}])
    setattr(obj, key, new_id)
    make_transient_to_detached(obj)
    session.add(obj)
    session.info.setdefault(_ADDED_NOW, []).append(obj)


def take_back_now(session: Session, obj: Any) -> None:
    """Undo :func:`add_now` for an object nothing references yet: delete its row, or forget its queued one.

    A queued row is dropped by the caller's ``DeferredWrites.undo`` (the command's mark); here the object
    leaves the session either way.
    """
    deferred: DeferredWrites | None = session.info.get(DEFERRED_WRITES)
    if deferred is not None and session.get_bind().dialect.name == "postgresql":
        session.expunge(obj)
    else:
        session.delete(obj)
        session.flush()


def pending_objects(session: Session, cls: type) -> list[Any]:
    """Return the objects of ``cls`` whose rows a deferring transaction has queued but not written yet."""
    if session.info.get(DEFERRED_WRITES) is None or session.get_bind().dialect.name != "postgresql":
        return []
    return [obj for obj in session.info.get(_ADDED_NOW, ()) if type(obj) is cls]
