"""check-access's statements, prepared once per connection and run straight on libpq.

A psycopg cursor costs about twice the round trip itself in client CPU (measured on the
2-core machine `make bench` runs on: 107 µs per check through the cursor, 33 µs for the
same statement through libpq), and check-access is the hot path of the business's
services. So its statements are prepared once per connection and executed with libpq's
`PQexecPrepared` through psycopg's `pq` module, parameters and results as text. Planning
them afresh each time would cost PostgreSQL more than running them (105 µs against 41 µs
of its CPU for the remembered customer's query, measured the same way).

psycopg itself prepares nothing (the settings turn its prepare_threshold off): it
deallocates every prepared statement of a connection after a rollback when it has any of
its own, which would take these with them.

It is still Django's connection and still counted like any other query: run inside
`wrap_database_errors` (so errors are Django's, and a broken connection is closed after
the request as usual), and logged to `queries_log` and the `django.db.backends` logger
when queries are logged (tests, DEBUG). Where DATABASE_PREPARED_STATEMENTS is off (a
pooler in transaction mode), it is sent unnamed, parsed each time. Inside a transaction
psycopg has not begun yet, the usual cursor runs it instead (so that it runs inside).
"""

import functools
import logging
import re
import time
import zlib
from datetime import datetime

import psycopg
from django.conf import settings
from psycopg import pq

logger = logging.getLogger("django.db.backends")

_PLACEHOLDER = re.compile(r"%s")


def _numbered(sql: str) -> bytes:
    """`%s` placeholders as PostgreSQL's `$1`, `$2`…, for a statement with no literal `%`."""
    count = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(count)}", sql).encode()


def _text(value) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode()


# Converters of a text result column; None stays None.
INT = int


def TEXT(value: bytes) -> str:
    return value.decode()


def BOOL(value: bytes) -> bool:
    return value == b"t"


def TIMESTAMPTZ(value: bytes) -> datetime:
    """A timestamptz as PostgreSQL writes it with the connection's UTC time zone."""
    return datetime.fromisoformat(value.decode())


def _prepared_names(db) -> set[bytes]:
    """The statements prepared on the current connection (a new connection has none)."""
    held = getattr(db, "_bp_prepared", None)
    if held is None or held[0] is not db.connection:
        held = db._bp_prepared = (db.connection, set())
    return held[1]


_SUCCEEDED = frozenset({pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK})
_IDLE = pq.TransactionStatus.IDLE


@functools.cache
def _statement(sql: str) -> tuple[bytes, bytes]:
    """(name, text with numbered placeholders) of a statement; the name is the same in
    every process, so that pg_prepared_statements reads the same everywhere."""
    return f"bp_{zlib.crc32(sql.encode()):08x}".encode(), _numbered(sql)


def _result_check(db, result, pgconn) -> None:
    if result.status in _SUCCEEDED:
        return
    if pgconn.status == pq.ConnStatus.BAD:
        message = pgconn.get_error_message() or b"the connection is broken"
        raise psycopg.OperationalError(message.decode(errors="replace").strip())
    raise psycopg.errors.error_from_result(result, encoding=db.connection.info.encoding)


def fetchone(db, sql: str, params: list, columns: tuple) -> tuple | None:
    """The first row of `sql`, each column read by its converter in `columns`, or None."""
    # As Django's cursors begin: CONN_HEALTH_CHECKS (a no-op once done in this request,
    # and in the lean path, which does its own), then a connection.
    db.close_if_health_check_failed()
    if db.connection is None:
        db.ensure_connection()
    pgconn = db.connection.pgconn
    if not db.autocommit and pgconn.transaction_status == _IDLE:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    name, numbered = _statement(sql)
    values = [_text(v) for v in params]
    logged = db.queries_logged
    started = time.monotonic() if logged else 0.0
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        names = _prepared_names(db)
        for attempt in (1, 2):
            if not settings.DATABASE_PREPARED_STATEMENTS:
                result = pgconn.exec_params(numbered, values)
                _result_check(db, result, pgconn)
                break
            if name not in names:
                _result_check(db, pgconn.prepare(name, numbered), pgconn)
                names.add(name)
            result = pgconn.exec_prepared(name, values)
            try:
                _result_check(db, result, pgconn)
                break
            except psycopg.errors.InvalidSqlStatementName:
                # Deallocated behind our back (DISCARD ALL): prepared again, once, where no
                # transaction was aborted by the failure.
                names.discard(name)
                if attempt == 2 or not db.autocommit:
                    raise
    if logged:
        duration = time.monotonic() - started
        db.queries_log.append({"sql": f"{sql} -- params {params!r}", "time": f"{duration:.3f}"})
        logger.debug(
            "(%.3f) %s; args=%s; alias=%s", duration, sql, params, db.alias,
            extra={"duration": duration, "sql": sql, "params": params, "alias": db.alias},
        )  # fmt: skip
    if result.ntuples == 0:
        return None
    values = (result.get_value(0, column) for column in range(result.nfields))
    return tuple(None if v is None else read(v) for read, v in zip(columns, values, strict=True))
