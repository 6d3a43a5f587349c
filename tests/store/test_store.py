"""The store on both databases it supports: the default SQLite file and a PostgreSQL server."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy.exc import IntegrityError

from rp_eval.store import ModelRow, Store


def row(name: str, **extra) -> ModelRow:
    return ModelRow(name=name, kind="base", source=f"/models/{name}", **extra)


def test_models_round_trip_with_big_numbers(database_url):
    store = Store(database_url)
    store.add_model(
        row(
            "elyza",
            parameters=6_738_415_616,
            size_bytes=13_476_831_232,
            parents=["a", "b"],
            made_by={"recipe": "ties", "日本語": "可"},
        )
    )
    again = Store(database_url).get_model("elyza")
    assert again.parameters == 6_738_415_616 and again.size_bytes == 13_476_831_232
    assert again.parents == ["a", "b"] and again.made_by["日本語"] == "可"
    assert store.remove_model("elyza") and store.get_model("elyza") is None
    assert store.integrity_ok()


def test_a_failed_transaction_writes_nothing(database_url):
    store = Store(database_url)
    store.add_model(row("kept"))
    with pytest.raises(IntegrityError), store.transaction() as s:
        s.add(row("new-one"))
        s.add(row("kept"))  # duplicate name: the whole transaction rolls back
    assert [r.name for r in store.list_models()] == ["kept"]


def _writer(url: str, prefix: str, count: int) -> None:
    store = Store(url)
    for i in range(count):
        store.add_model(row(f"{prefix}-{i}"))


def test_several_processes_writing_at_once_lose_nothing(database_url):
    Store(database_url)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(database_url, f"p{n}", 25)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    names = [r.name for r in Store(database_url).list_models()]
    assert len(names) == 100 == len(set(names))


def test_a_forked_child_opens_its_own_connections(database_url):
    """On a ZeroGPU Space a handler runs in a forked child: it must not use the parent's pooled connection
    (two processes on one connection corrupt the conversation with the database), and the parent's must
    still work afterwards."""
    import os

    store = Store(database_url)
    store.add_model(row("before-fork"))
    with store.engine.connect() as conn:  # one connection in the parent's pool
        parent = id(conn.connection.dbapi_connection)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, write a row, leave at once
        code = 1
        try:
            with store.engine.connect() as conn:
                reused = id(conn.connection.dbapi_connection) == parent
            store.add_model(row("from-child"))
            os.write(write, b"reused" if reused else b"own")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    said = os.read(read, 16)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert said == b"own"
    assert {r.name for r in store.list_models()} == {"before-fork", "from-child"}
