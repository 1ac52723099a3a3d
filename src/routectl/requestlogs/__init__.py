"""request_logs: the access-log records of routed requests, as rows of PostgreSQL's request_logs.

`rows` turns a record into a row (pure); `database` writes rows idempotently with COPY; `spool`
keeps rows on local disk while the database is away; `sink` is what `routectl serve
--log-database-url` mounts on the runtime (a bounded queue and a writer thread); `load` and
`prune` are `routectl logs load` and `routectl logs prune`. The runtime never imports this package
(it needs psycopg: `pip install 'routectl[logs]'`).
"""
