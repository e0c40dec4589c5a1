"""Rebuilding a projection from position 0 beside the live one, then swapping, while the
system runs.

1. **Shadow tables.** Schema ``rebuild_<name>`` gets a copy of each live table's shape
   (``LIKE ... INCLUDING ALL`` with the live table's index and constraint names, owner and
   grants) and an empty ``inbox``.
2. **Build.** The projection's own handler, built by its service's ``main.py``, runs on
   an event store whose connections have ``search_path = rebuild_<name>, public``: its SQL is
   unchanged and lands in the shadow tables, while ``events`` is still the one log. Events
   are applied in position order from the first one; then the build catches up to the head
   again until little is left.
3. **Swap**, in one transaction: lock the live tables (the live consumer and readers wait a
   moment), apply the events recorded since, move the live tables out of ``public`` and the
   rebuilt ones in (their indexes and constraints go with them, under the live names), drop
   the old ones. Statements waiting on the lock then find the rebuilt tables by name.

The live consumer keeps running throughout. Everything it had written before the lock is
in the log the rebuild read up to the head under the lock; what it writes after the swap
goes to the rebuilt tables, where its guards (positions, versions) make an event the
rebuild already applied a no-op. So nothing is lost, and the result equals a projection of
the whole log.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from adminduk.ops import catalogue
from adminduk.ops.catalogue import Projection
from adminduk.ops.replay import ChunkStore, ProjectionContext, apply_chunk, run_handler
from adminduk.ops.selection import PAGE, Selection, read_ahead, select_pages
from shared.bus.consumer import ConsumerSpec, Handler
from shared.config import Settings
from shared.eventstore.envelope import RecordedEvent
from shared.keyring import Sealer

log = logging.getLogger(__name__)

ATTEMPTS: Final = 3
"""Tries per event before the rebuild gives up (a transient database error is retried)."""
SWAP_ATTEMPTS: Final = 5
CLOSE_ENOUGH: Final = 200
"""Events left behind the head at which the build stops catching up and swaps: what is
left is applied under the lock, so this bounds how long readers wait."""
_INDEX_DEF: Final = re.compile(
    r'^CREATE (?P<unique>UNIQUE )?INDEX (?:"(?:[^"]|"")+"|\S+) ON (?:ONLY )?\S+ '
    r"(?P<rest>USING .*)$",
    re.DOTALL,
)

Report = Callable[[str], None]
Advance = Callable[[int, int, int], None]
"""Told the events applied so far, the position reached and the head it goes to, after
every page of events."""


class RebuildError(RuntimeError):
    """The rebuild stopped; the live tables are as they were."""


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` whose sessions resolve unqualified names in ``schema`` first, then ``public``
    (asyncpg passes unknown DSN parameters to the server as settings)."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", f"{schema},public"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class SwapResult:
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per table: rows of the live table before, of the rebuilt one after."""
    applied_under_lock: int = 0
    retired_schema: str | None = None
    """Where the old tables are kept (``keep_old``), else None (dropped)."""


class ShadowProjection:
    """A projection built from the log in a schema of its own, beside the live tables."""

    def __init__(
        self,
        dsn: str,
        settings: Settings,
        projection: Projection,
        *,
        schema: str | None = None,
        page: int = PAGE,
        report: Report | None = None,
        advance: Advance | None = None,
    ) -> None:
        self.dsn = dsn
        self.settings = settings
        self.projection = projection
        self.schema = schema or f"rebuild_{projection.name}"
        self.page = page
        self.report = report or (lambda _: None)
        self.advance = advance or (lambda _applied, _position, _head: None)
        self.position = 0
        """Every event up to here is applied to the shadow tables."""
        self.applied = 0
        self._stack = AsyncExitStack()
        self._admin: asyncpg.Connection | None = None
        self._store: ChunkStore | None = None
        self._spec: ConsumerSpec | None = None
        self._handler: Handler | None = None

    # -- life cycle ------------------------------------------------------------------------

    async def __aenter__(self) -> ShadowProjection:
        try:
            self._admin = await asyncpg.connect(self.dsn)
            self._stack.push_async_callback(self._admin.close)
            taken = await self._admin.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                f"adminduk:rebuild:{self.schema}",
            )
            if not taken:
                raise RebuildError(f"another rebuild into {self.schema} is running")
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._stack.aclose()

    @property
    def admin(self) -> asyncpg.Connection:
        assert self._admin is not None, "use ShadowProjection as an async context manager"
        return self._admin

    @property
    def store(self) -> ChunkStore:
        assert self._store is not None, "call create() first"
        return self._store

    # -- 1. shadow tables -------------------------------------------------------------------

    async def create(self) -> None:
        """(Re)create the shadow schema and tables, and the handler that writes them."""
        for table in self.projection.tables:
            await self._check_supported(table)
        await self.admin.execute(f"DROP SCHEMA IF EXISTS {ident(self.schema)} CASCADE")
        await self.admin.execute(f"CREATE SCHEMA {ident(self.schema)}")
        for table in self.projection.tables:
            await self._copy_shape(table)
        await self.admin.execute(
            f"CREATE TABLE {ident(self.schema)}.inbox (LIKE public.inbox INCLUDING ALL)"
        )
        self._store = await ChunkStore.open_at(
            with_search_path(self.dsn, self.schema), Sealer.from_settings(self.settings)
        )
        self._stack.push_async_callback(self._store.close)
        self._spec, self._handler = await self._stack.enter_async_context(
            catalogue.consumer(self.projection.consumer, self.settings, self._store)
        )
        self.position = 0
        self.applied = 0

    async def _check_supported(self, table: str) -> None:
        """Refuse what a copy of the table's shape would not carry over."""
        qualified = f"public.{ident(table)}"
        exists = await self.admin.fetchval("SELECT to_regclass($1)", qualified)
        if exists is None:
            raise RebuildError(f"table public.{table} does not exist (run adminduk migrate)")
        problems = await self.admin.fetchval(
            """
            SELECT concat_ws('; ',
                (SELECT 'views depend on it' FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE d.refobjid = $1::regclass AND r.ev_class <> $1::regclass LIMIT 1),
                (SELECT 'foreign keys involve it' FROM pg_constraint
                  WHERE contype = 'f' AND (conrelid = $1::regclass OR confrelid = $1::regclass)
                  LIMIT 1),
                (SELECT 'it has triggers' FROM pg_trigger
                  WHERE tgrelid = $1::regclass AND NOT tgisinternal LIMIT 1),
                (SELECT 'it has serial or identity columns' FROM pg_attribute
                  WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
                    AND (attidentity <> ''
                         OR pg_get_serial_sequence($1::regclass::text, attname::text) IS NOT NULL)
                  LIMIT 1))
            """,
            qualified,
        )
        if problems:
            raise RebuildError(f"cannot rebuild public.{table}: {problems}")

    async def _copy_shape(self, table: str) -> None:
        """The live table's columns, defaults and checks (``LIKE``), then its keys and
        indexes under the live names, its owner and its grants."""
        live, shadow = f"public.{ident(table)}", f"{ident(self.schema)}.{ident(table)}"
        await self.admin.execute(
            f"CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL EXCLUDING INDEXES)"
        )
        for name, definition in await self.admin.fetch(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname",
            live,
        ):
            await self.admin.execute(
                f"ALTER TABLE {shadow} ADD CONSTRAINT {ident(name)} {definition}"
            )
        for name, definition in await self.admin.fetch(
            """
            SELECT i.relname, pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = $1::regclass AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c
                WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid)
            ORDER BY i.relname
            """,
            live,
        ):
            match = _INDEX_DEF.match(definition)
            if match is None:
                raise RebuildError(f"cannot copy index {name}: {definition}")
            await self.admin.execute(
                f"CREATE {match['unique'] or ''}INDEX {ident(name)} ON {shadow} {match['rest']}"
            )
        owner = await self.admin.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $1::regclass", live
        )
        if owner != await self.admin.fetchval("SELECT current_user"):
            await self.admin.execute(f"ALTER TABLE {shadow} OWNER TO {ident(owner)}")
        for grantee, privilege, grantable in await self.admin.fetch(
            """
            SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                   a.privilege_type, a.is_grantable
            FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.oid = $1::regclass AND a.grantee <> c.relowner
            """,
            live,
        ):
            target = "PUBLIC" if grantee == "PUBLIC" else ident(grantee)
            option = " WITH GRANT OPTION" if grantable else ""
            await self.admin.execute(f"GRANT {privilege} ON {shadow} TO {target}{option}")

    # -- 2. build ----------------------------------------------------------------------------

    async def catch_up(self, until: int | None = None) -> int:
        """Apply the events after :attr:`position` up to ``until`` (the head when None);
        returns how many were applied. A page of events is applied in one transaction; a
        page that fails is applied again one event at a time, to name the event at fault."""
        assert self._spec is not None and self._handler is not None, "call create() first"
        head = await self.store.last_position() if until is None else until
        applied = 0
        self.store.forget_streams()  # what is kept across pages is kept within one pass
        pages = read_ahead(
            select_pages(
                self.store,
                Selection(from_position=self.position + 1),
                until=head,
                subjects=self._spec.subjects,
                page=self.page,
            )
        )
        async for events in pages:
            try:
                await apply_chunk(self.store, self._spec, self._handler, events, projection=True)
            except Exception as error:  # noqa: BLE001 - rolled back: one at a time says which
                log.info(
                    "%s: a page failed (%s); one event at a time",
                    self.projection.name,
                    type(error).__name__,
                )
                for event in events:
                    await self._apply(self._spec, self._handler, event)
            applied += len(events)
            self.applied += len(events)
            self.advance(self.applied, events[-1].position, head)
        self.position = max(self.position, head)
        return applied

    async def _apply(self, spec: ConsumerSpec, handler: Handler, event: RecordedEvent) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            context = ProjectionContext(
                consumer=spec.name, store=self.store, event=event, deliveries=attempt
            )
            try:
                await run_handler(spec, handler, context)
                return
            except (asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError):
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(0.2 * attempt)
            except Exception as error:
                raise RebuildError(
                    f"{event.event_type} at position {event.position} failed "
                    f"({type(error).__name__}); the live tables are untouched. The event: "
                    f"adminduk events tail --from-position {event.position} "
                    f"--until-position {event.position} --json"
                ) from error

    async def build(self) -> None:
        """From position 0 until the head is close (see :data:`CLOSE_ENOUGH`)."""
        while True:
            head = await self.store.last_position()
            if head - self.position <= CLOSE_ENOUGH and self.position > 0:
                return
            await self.catch_up(head)
            self.report(
                f"{self.projection.name}: caught up to position {self.position} "
                f"({self.applied} events applied)"
            )
            if await self.store.last_position() - self.position <= CLOSE_ENOUGH:
                return

    # -- 3. swap -------------------------------------------------------------------------

    async def swap(self, *, keep_old: bool = False, lock_timeout: float = 5.0) -> SwapResult:
        """Lock the live tables, apply the last events, put the rebuilt tables in their
        place. A lock not granted within ``lock_timeout`` (a long transaction holds the
        table) is tried again after catching up, a few times."""
        for table in self.projection.tables:
            await self.admin.execute(f"ANALYZE {ident(self.schema)}.{ident(table)}")
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                return await self._swap_once(keep_old, lock_timeout)
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as error:
                if attempt == SWAP_ATTEMPTS:
                    raise RebuildError(
                        f"the live tables stayed busy ({type(error).__name__}) through "
                        f"{SWAP_ATTEMPTS} attempts; nothing was swapped"
                    ) from error
                self.report(f"{self.projection.name}: tables busy, trying the swap again")
                await self.catch_up()
        raise AssertionError("unreachable")

    async def _swap_once(self, keep_old: bool, lock_timeout: float) -> SwapResult:
        result = SwapResult()
        shadow = ident(self.schema)
        retired = f"retired_{self.projection.name}_{datetime.now(UTC):%Y%m%d%H%M%S}"
        live_tables = ", ".join(f"public.{ident(t)}" for t in self.projection.tables)
        async with self.admin.transaction():
            await self.admin.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'")
            await self.admin.execute(f"LOCK TABLE {live_tables} IN ACCESS EXCLUSIVE MODE")
            await self.admin.execute("SET LOCAL lock_timeout = 0")
            # Nothing reaches the live tables now: what the live consumer wrote is in the
            # log up to this head.
            result.applied_under_lock = await self.catch_up()
            await self.admin.execute(f"CREATE SCHEMA {ident(retired)}")
            for table in self.projection.tables:
                before = await self.admin.fetchval(f"SELECT count(*) FROM public.{ident(table)}")
                after = await self.admin.fetchval(f"SELECT count(*) FROM {shadow}.{ident(table)}")
                result.rows[table] = (int(before), int(after))
                await self.admin.execute(
                    f"ALTER TABLE public.{ident(table)} SET SCHEMA {ident(retired)}"
                )
                await self.admin.execute(f"ALTER TABLE {shadow}.{ident(table)} SET SCHEMA public")
            if keep_old:
                result.retired_schema = retired
            else:
                await self.admin.execute(f"DROP SCHEMA {ident(retired)} CASCADE")
        return result

    async def drop(self) -> None:
        """Remove the shadow schema and what is left in it."""
        await self.admin.execute(f"DROP SCHEMA IF EXISTS {ident(self.schema)} CASCADE")


@dataclass
class RebuildResult:
    projection: str
    applied: int
    head: int
    swap: SwapResult


async def rebuild(
    dsn: str,
    settings: Settings,
    projection: Projection,
    *,
    keep_old: bool = False,
    lock_timeout: float = 5.0,
    page: int = PAGE,
    report: Report | None = None,
    advance: Advance | None = None,
) -> RebuildResult:
    """Rebuild ``projection`` from position 0 beside the live tables and swap it in."""
    async with ShadowProjection(
        dsn, settings, projection, page=page, report=report, advance=advance
    ) as shadow:
        try:
            await shadow.create()
            tables = ", ".join(projection.tables)
            shadow.report(f"{projection.name}: building {tables} in schema {shadow.schema}")
            await shadow.build()
            swapped = await shadow.swap(keep_old=keep_old, lock_timeout=lock_timeout)
        finally:
            await shadow.drop()
        return RebuildResult(projection.name, shadow.applied, shadow.position, swapped)
