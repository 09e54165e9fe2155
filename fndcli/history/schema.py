"""The history store's tables, declared once (SQLAlchemy Core): the same on SQLite and PostgreSQL.

One run of a measuring command is one row of `runs`, on one row of `machines`; its main CSV's
cells are rows of `cells`, and its pyperf file's values, every worker process's, rows of
`timings`. So a figure per benchmark per commit on one machine is `runs` joined with `cells`
(or `timings`), where `runs.machine_id` is the machine's and grouped by `runs.git_commit`.
Times are ISO 8601 text in UTC (they sort as text and read back alike on both servers); a
JSON document is text. docs/history.md describes each column.
"""

import sqlalchemy as sa

SCHEMA = 1  # fnd_store's 'schema': a store written with a higher one is refused (written by a newer fnd)

metadata = sa.MetaData()

STORE = sa.Table(
    "fnd_store",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # 'schema', 'created_utc'
    sa.Column("value", sa.Text, nullable=False),
)

MACHINES = sa.Table(
    "machines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fingerprint", sa.String(16), nullable=False, unique=True),  # fndcli.history.facts.Machine
    sa.Column("cpu_model", sa.Text, nullable=False),
    sa.Column("isa", sa.String(16), nullable=False),
    sa.Column("cores", sa.Integer, nullable=False),
    sa.Column("cpus", sa.Integer, nullable=False),
    sa.Column("memory_gib", sa.Integer, nullable=False),
    sa.Column("os", sa.Text, nullable=False),
    sa.Column("arch", sa.String(32), nullable=False),
    sa.Column("gpu", sa.Text),
)

RUNS = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), nullable=False),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # fndcli.kinds: init-sweep's two are apart
    sa.Column("status", sa.String(16), nullable=False),  # complete | failed (interrupted runs are not kept)
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("started_utc", sa.String(40), nullable=False),
    sa.Column("finished_utc", sa.String(40), nullable=False),
    # the code measured: the git repository of the first FILE.py a run loads, else of the current directory
    sa.Column("repo", sa.Text),  # None: not in a git repository
    sa.Column("git_commit", sa.String(64)),
    sa.Column("dirty", sa.Boolean),
    sa.Column("branch", sa.Text),
    sa.Column("commit_utc", sa.String(40)),
    sa.Column("subject", sa.Text),
    sa.Column("fnd_version", sa.String(32), nullable=False),
    sa.Column("fnd_commit", sa.String(64)),  # fnd's own checkout, when it runs from one
    sa.Column("torch_version", sa.String(64)),
    sa.Column("numba_version", sa.String(64)),
    sa.Column("python_version", sa.String(32), nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # the effective config, JSON: the sidecar's
    sa.Column("sidecar", sa.Text, nullable=False),  # the whole sidecar, JSON
    sa.Column("path", sa.Text, nullable=False),  # where the sidecar was written
    sa.Index("runs_by_machine_and_commit", "machine_id", "git_commit"),
)

CELLS = sa.Table(
    "cells",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True),  # the main CSV's row, from 0
    sa.Column("name", sa.String(64), primary_key=True),  # its column
    # a number or bool column (True 1, False 0) holds `number`, a text or label column `text`; empty: NULL
    sa.Column("number", sa.Double),
    sa.Column("text", sa.Text),
)

TIMINGS = sa.Table(
    "timings",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("benchmark", sa.String(255), primary_key=True),  # pyperf's name: 'torch 5x784x10 float32 cpu'
    sa.Column("process", sa.Integer, primary_key=True),  # the worker process, from 0, in the order they ran
    sa.Column("value", sa.Integer, primary_key=True),  # the value within the process, from 0
    sa.Column("seconds", sa.Double, nullable=False),
    sa.Column("row", sa.Integer),  # the CSV row of this benchmark (matmul-bench), else NULL
)
