"""core.db.DeferredWrites: rows and balance increments written at the end, undone per failed command."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, create_engine, event, insert, select
from sqlalchemy.orm import Session

from core.db import DEFERRED_WRITES, DeferredWrites, insert_rows

METADATA = MetaData()
ACCOUNTS = Table("account", METADATA, Column("id", Integer, primary_key=True), Column("a", BigInteger),
                 Column("b", BigInteger))  # fmt: skip
NOTES = Table("note", METADATA, Column("id", Integer, primary_key=True), Column("text", String(20)))


def test_rows_and_increments_are_written_once_and_a_failed_command_takes_its_own_back() -> None:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    memory = {"a": 100, "b": 0}  # the caller's in-memory copy of account 1
    with Session(engine) as session:
        session.execute(insert(ACCOUNTS), [{"id": 1, "a": 100, "b": 0}, {"id": 2, "a": 5, "b": 5}])
        deferred = DeferredWrites()
        session.info[DEFERRED_WRITES] = deferred

        def move(column: str, delta: int) -> None:
            memory[column] += delta
            deferred.increment(ACCOUNTS, 1, {column: delta}, lambda: memory.__setitem__(column, memory[column] - delta))

        insert_rows(session, NOTES, [{"text": "first"}])
        move("a", -30)
        move("b", 30)
        mark = deferred.mark()
        insert_rows(session, NOTES, [{"text": "refused"}])
        move("a", -50)
        deferred.undo(mark)  # the second command failed
        assert memory == {"a": 70, "b": 30}
        deferred.increment(ACCOUNTS, 2, {"a": 1, "b": 0}, lambda: None)
        assert session.scalar(select(NOTES.c.text)) is None  # nothing written yet
        deferred.write(session)
        assert list(session.scalars(select(NOTES.c.text))) == ["first"]
        assert session.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.a, ACCOUNTS.c.b).order_by(ACCOUNTS.c.id)).all() == [
            (1, 70, 30), (2, 6, 5)]  # fmt: skip
        deferred.write(session)  # written once: a second write has nothing left
        assert session.execute(select(ACCOUNTS.c.a).where(ACCOUNTS.c.id == 1)).scalar() == 70
        del session.info[DEFERRED_WRITES]
        insert_rows(session, NOTES, [{"text": "now"}])  # no deferral: written at once
        assert session.scalar(select(NOTES.c.text).where(NOTES.c.text == "now")) == "now"


def test_increments_of_one_table_go_in_one_statement_whatever_columns_each_row_changes() -> None:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    statements: list[str] = []
    with Session(engine) as session:
        session.execute(insert(ACCOUNTS), [{"id": i, "a": 10, "b": 10} for i in (1, 2, 3, 4)])
        deferred = DeferredWrites()
        deferred.increment(ACCOUNTS, 1, {"a": 5}, lambda: None)
        deferred.increment(ACCOUNTS, 2, {"b": -5}, lambda: None)
        deferred.increment(ACCOUNTS, 3, {"a": 1, "b": 2}, lambda: None)
        deferred.increment(ACCOUNTS, 4, {"a": 3}, lambda: None)
        deferred.increment(ACCOUNTS, 4, {"a": -3}, lambda: None)  # nets to nothing: the row is left alone
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        deferred.write(session)
        assert len(statements) == 1 and statements[0].startswith("UPDATE account")
        assert session.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.a, ACCOUNTS.c.b).order_by(ACCOUNTS.c.id)).all() == [
            (1, 15, 10), (2, 10, 5), (3, 11, 12), (4, 10, 10)]  # fmt: skip
