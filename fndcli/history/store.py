"""The history store: each run of a measuring command appended in one transaction, to an SQLite file (the
default, `default_path()`) or a PostgreSQL database, named by SQLAlchemy URL (docs/history.md).

Writers queue rather than collide: on SQLite each write begins `BEGIN IMMEDIATE` (the file's write lock,
waited for up to SQLITE_TIMEOUT_S, in WAL mode so readers never wait); on PostgreSQL each takes one
advisory lock for its transaction. A write is one transaction, so an error or Ctrl-C part-way leaves the
store as it was. Every failure is a StoreError of one line.
"""

import contextlib
import os
import sqlite3
from dataclasses import asdict
from pathlib import Path
from urllib.parse import unquote

import sqlalchemy as sa

from fndcli.history.schema import CELLS, MACHINES, RUNS, SCHEMA, STORE, TIMINGS, metadata
from fndcli.machine import utc_now
from fndcli.numerics import first_line

SQLITE_TIMEOUT_S = 30.0  # how long a write waits for another's lock on SQLite (the URL's ?timeout=S wins)
PG_CONNECT_TIMEOUT_S = 10  # a server that does not answer (the URL's ?connect_timeout=S wins)
PG_LOCK_TIMEOUT_MS = 30_000
PG_LOCK = 0x666E64  # 'fnd': the advisory lock every write holds on PostgreSQL


class StoreError(Exception):
    """What is wrong with the store, in one line."""


def default_path():
    """$XDG_DATA_HOME/fnd/history.db, else ~/.local/share/fnd/history.db."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "fnd" / "history.db"


def parse_url(db=None):
    """The SQLAlchemy URL that `db` (--db, FND_DB) names; None: the SQLite file at default_path(), its
    directory made. An empty one is refused: `--db "$UNSET"` in a CI script must not write to a home
    directory's store."""
    if db is not None and not db.strip():
        raise StoreError("--db (or FND_DB) is empty: give a URL, sqlite:///PATH/TO/FILE or postgresql://...")
    if db is None:
        path = default_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot make the history store's directory {path.parent}: {e.strerror or e}")
        return sa.URL.create("sqlite", database=str(path))
    try:
        url = sa.make_url(db)
    except (sa.exc.ArgumentError, ValueError):
        raise StoreError(
            f"{db!r} is not a database URL: give sqlite:///PATH/TO/FILE or postgresql://USER@HOST/DB"
        )
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url
    if backend != "sqlite":
        raise StoreError(f"{db!r}: fnd keeps its history in sqlite or postgresql, not {backend}")
    if url.database in (None, "", ":memory:"):
        raise StoreError(f"{db!r} is an SQLite store in memory, which keeps nothing: name a file")
    if not Path(url.database).parent.resolve().is_dir():
        raise StoreError(f"{db!r}: the directory {Path(url.database).parent} does not exist")
    return url


def _engine(url):
    if url.get_backend_name() == "postgresql":
        args = {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        return sa.create_engine(url, connect_args=args, poolclass=sa.pool.NullPool)
    args = {} if "timeout" in url.query else {"timeout": SQLITE_TIMEOUT_S}
    # one connection for the check and the write (closing the last one checkpoints the WAL: an fsync)
    engine = sa.create_engine(url, connect_args=args)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record):
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not pysqlite's own
        # in WAL mode a commit then needs no fsync of its own, and the file is never damaged: at worst a power
        # cut loses the last runs written, whose files are on disk beside
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writing") else "BEGIN")

    return engine


class Store:
    """An open history store: `Store.open(db)`, then `record(entry)` once per run."""

    def __init__(self, url):
        self.url = url
        self.postgresql = url.get_backend_name() == "postgresql"
        # where, for people: the URL as typed (the password hidden, the socket's directory unescaped)
        shown = url.set(drivername="postgresql") if url.drivername == "postgresql+psycopg" else url
        self.where = unquote(shown.render_as_string(hide_password=True)) if self.postgresql else url.database
        self.engine = _engine(url)

    @classmethod
    def open(cls, db=None):
        """The store `db` names, its tables made if it has none; StoreError if it cannot be reached or
        written, is not fnd's, or was written by a newer fnd."""
        store = cls(parse_url(db))
        with store._writing() as conn:
            store._check(conn)
        if not store.postgresql:
            store._write_ahead_log()
        return store

    def _write_ahead_log(self):
        """SQLite's WAL mode, once the file is fnd's store (a refused file is left as it was): readers never
        wait for a writer. It stays with the file; outside a transaction, as SQLite wants."""
        connection = self.engine.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as e:
            raise StoreError(self._why(e)) from e
        finally:
            connection.close()

    def _check(self, conn):
        tables = set(sa.inspect(conn).get_table_names())
        if STORE.name not in tables:
            if ours := sorted(tables & set(metadata.tables)):
                raise StoreError(
                    f"{self.where} holds tables named as fnd's ({', '.join(ours)}) but is not an fnd history "
                    "store: choose another with --db"
                )
            metadata.create_all(conn)
            conn.execute(
                STORE.insert(),
                [
                    {"key": "schema", "value": str(SCHEMA)},
                    {"key": "created_utc", "value": utc_now().isoformat()},
                ],
            )
            return
        found = conn.execute(sa.select(STORE.c.value).where(STORE.c.key == "schema")).scalar()
        if not (found or "").isdigit():
            raise StoreError(
                f"{self.where} is not an fnd history store (no schema version): choose another with --db"
            )
        if int(found) > SCHEMA:
            raise StoreError(
                f"the history store {self.where} was written by a newer fnd (history schema {found}; this "
                f"fnd writes {SCHEMA}): upgrade fnd, or choose another store with --db"
            )

    def record(self, entry):
        """Append one run (`fndcli.history.entry.Entry`) in one transaction: all of it lands, or none of it.
        Its id."""
        with self._writing() as conn:
            machine = asdict(entry.machine) | {"fingerprint": entry.machine.fingerprint}
            machine_id = conn.execute(
                sa.select(MACHINES.c.id).where(MACHINES.c.fingerprint == machine["fingerprint"])
            ).scalar()
            if machine_id is None:  # under the write lock: no other writer adds it meanwhile
                machine_id = conn.execute(MACHINES.insert().values(machine)).inserted_primary_key[0]
            run_id = conn.execute(
                RUNS.insert().values(machine_id=machine_id, **entry.run)
            ).inserted_primary_key[0]
            for table, rows in ((CELLS, entry.cells), (TIMINGS, entry.timings)):
                if rows:
                    conn.execute(table.insert(), [{"run_id": run_id, **row} for row in rows])
        return run_id

    def read(self):
        """Every run, oldest first: {'run': the runs row and its machine's columns, 'cells': [...], 'timings':
        [...]}, without the store's own ids (they differ between stores holding the same runs)."""
        with self._faults(), self.engine.connect() as conn:
            runs = conn.execute(
                sa.select(RUNS, *[c for c in MACHINES.c if c.name != "id"])
                .join(MACHINES, RUNS.c.machine_id == MACHINES.c.id)
                .order_by(RUNS.c.id)
            ).mappings()
            out = []
            for run in runs.all():
                parts = {}
                for table, order in ((CELLS, ("row", "name")), (TIMINGS, ("benchmark", "process", "value"))):
                    query = sa.select(*[c for c in table.c if c.name != "run_id"]).where(
                        table.c.run_id == run["id"]
                    )
                    parts[table.name] = [dict(r) for r in conn.execute(query.order_by(*order)).mappings()]
                out.append({"run": {k: v for k, v in run.items() if k not in ("id", "machine_id")}, **parts})
        return out

    @contextlib.contextmanager
    def _writing(self):
        """A write transaction, once this writer holds the store's write lock."""
        with self._faults(), self.engine.connect().execution_options(writing=True) as conn, conn.begin():
            if self.postgresql:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {PG_LOCK_TIMEOUT_MS}")
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_LOCK)))
            yield conn

    @contextlib.contextmanager
    def _faults(self):
        try:
            yield
        except sa.exc.SQLAlchemyError as e:
            raise StoreError(self._why(e)) from e

    def _why(self, error):
        """One line for what the driver said."""
        said = first_line(getattr(error, "orig", None) or error)
        if "database is locked" in said or "lock timeout" in said:
            timeout = self.url.query.get("timeout", SQLITE_TIMEOUT_S)
            wait = f"{float(timeout):g} s" if not self.postgresql else f"{PG_LOCK_TIMEOUT_MS / 1000:g} s"
            return f"the history store {self.where} is locked: another process held it for over {wait}"
        if "file is not a database" in said or "malformed" in said:
            return (
                f"the history store {self.where} is not an SQLite database, or is damaged ({said}): move it "
                "aside, or choose another store with --db"
            )
        if self.postgresql and isinstance(error, sa.exc.OperationalError):
            return f"cannot reach the history store {self.where}: {said}"
        return f"the history store {self.where}: {said}"

    def close(self):
        self.engine.dispose()
