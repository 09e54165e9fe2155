"""The history store: every run of a measuring command remembered across commits (docs/history.md).

`facts` (the machine's fingerprint, the commit measured, the versions), `schema` (the tables), `entry` (what
one run adds, read from its files), `store` (the URL, the connection, the checks, the one-transaction
write). Torch-free; SQLAlchemy is imported when a run starts, never by `--help`.
"""
