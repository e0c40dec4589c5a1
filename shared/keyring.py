"""Crypto-shredding: personal data in the event log, erasable although the log is not.

The log is append-only (a trigger forbids UPDATE and DELETE) and its events are copied
onwards: to JetStream, to dead letters, to backups. So a citizen's personal data cannot be
deleted from it; it is made unreadable instead. Every citizen (a WhatsApp number, known by
its citizen stream ``citizen-<pseudonym>``) has a random 256-bit data key in the
``citizen_keys`` table. On append, the fields an event class declares ``personal`` are
taken out of its data and sealed with that key as one AES-256-GCM box::

    {"ticket": "KTP-...", "doc_type": "KTP", ...,
     "sealed": {"key": "<key id>", "box": "<base64 of nonce + ciphertext>"}}

Readers (the store's read paths, consumers) get the data back in clear. Erasing the
citizen's key (``adminduk citizens erase``) leaves every copy of those boxes unopenable:
the events then read with placeholders (``""``, ``{}``, ``[]``, None or the field's
default, valid for the typed event) and ``RecordedEvent.erased`` set. The non-personal
facts (ticket, document, kecamatan, dates, statuses, file digests) stay in clear for
statistics.

Data keys are stored wrapped with a key-encryption key derived (HKDF-SHA256) from the
office's secret key, which never enters the database, so a database dump opens nothing.
Each box is bound to its event (the event id and type are its associated data): a box
copied into another event does not open.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
import types
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Union, get_args, get_origin

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic_core import to_jsonable_python

from shared.config import Settings
from shared.contracts import citizen_stream, registry
from shared.eventstore.envelope import Event, NewEvent, RecordedEvent, stream_category

log = logging.getLogger(__name__)

SEALED: Final = "sealed"
"""The key of the sealed part in a stored event's data."""
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_KEK_INFO: Final = b"adminduk citizen data keys v1"
_KEK_SALT: Final = b"adminduk/keyring"
_MAX_CACHED: Final = 100_000
_CREATE_ATTEMPTS: Final = 3

Executor = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy
"""Where key rows are read and written: a pool (autocommit) or one connection."""


class UnreadableEventError(ValueError):
    """A sealed event whose box does not open with its own key: it was altered, or it was
    sealed under another secret key. Never treated as erased: that would hide tampering."""


def key_encryption_key(secret: bytes) -> bytes:
    """The key that wraps every data key, derived from the office's secret key."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_KEK_SALT, info=_KEK_INFO).derive(
        secret
    )


@dataclass(frozen=True)
class DataKey:
    """One citizen's data key, unwrapped (in memory only)."""

    key_id: uuid.UUID
    citizen: str
    cipher: AESGCM


def _wrap_aad(key_id: uuid.UUID, citizen: str) -> bytes:
    # A wrapped key copied to another row (another citizen) does not unwrap.
    return key_id.bytes + citizen.encode()


class Keyring:
    """Per-citizen data keys: created on first use, cached for at most ``cache_ttl``.

    The cache bounds the cost (one database round trip per citizen and ``cache_ttl``, not
    per event) and also how long a running process can still read data after its key was
    erased elsewhere.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        cache_ttl: timedelta = timedelta(seconds=60),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kek = AESGCM(key_encryption_key(secret))
        self._ttl = cache_ttl.total_seconds()
        self._clock = clock
        self._live: dict[str, tuple[float, DataKey]] = {}
        self._by_id: dict[uuid.UUID, tuple[float, DataKey | None]] = {}

    def wrap(self, key_id: uuid.UUID, citizen: str, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._kek.encrypt(nonce, key, _wrap_aad(key_id, citizen))

    def unwrap(self, key_id: uuid.UUID, citizen: str, wrapped: bytes) -> DataKey:
        try:
            key = self._kek.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(key_id, citizen)
            )
        except InvalidTag as error:
            raise UnreadableEventError(
                f"data key {key_id} does not unwrap: altered, or wrapped under another "
                "secret key (ADMINDUK_SECRET_KEY must never change)"
            ) from error
        return DataKey(key_id, citizen, AESGCM(key))

    def forget(self) -> None:
        """Drop every cached key (after an erasure in this process)."""
        self._live.clear()
        self._by_id.clear()

    def _remember(self, key: DataKey, *, live: bool) -> None:
        if len(self._by_id) >= _MAX_CACHED:
            self._evict()
        expires = self._clock() + self._ttl
        self._by_id[key.key_id] = (expires, key)
        if live:
            self._live[key.citizen] = (expires, key)

    def _evict(self) -> None:
        """Drop expired keys; everything if the cache is still full (a key is only ever
        one round trip away)."""
        now = self._clock()
        self._live = {name: item for name, item in self._live.items() if item[0] > now}
        self._by_id = {key_id: item for key_id, item in self._by_id.items() if item[0] > now}
        if len(self._by_id) >= _MAX_CACHED:
            self.forget()

    async def live_keys(self, executor: Executor, citizens: Collection[str]) -> dict[str, DataKey]:
        """Each citizen's live key, created for those who have none.

        On a pool, created keys are committed at once, on their own (autocommit), before
        the events they seal: an unused key is harmless. On a connection (a unit of work's
        transaction, so that it never waits for a second connection while holding one),
        a created key commits or rolls back with the events it seals, and is not cached
        until it is read back committed: a cached key that was rolled back would seal
        later events with a key nobody has.
        """
        now = self._clock()
        found: dict[str, DataKey] = {}
        for citizen in citizens:
            cached = self._live.get(citizen)
            if cached is not None and cached[0] > now:
                found[citizen] = cached[1]
        # Sorted: two transactions creating keys for the same citizens lock them in the
        # same order, so they wait for each other instead of deadlocking.
        missing = sorted(citizen for citizen in citizens if citizen not in found)
        committed = isinstance(executor, asyncpg.Pool)
        for _ in range(_CREATE_ATTEMPTS):
            if not missing:
                break
            for key, created in await self._get_or_create(executor, missing):
                if committed or not created:
                    self._remember(key, live=True)
                found[key.citizen] = key
            missing = [citizen for citizen in missing if citizen not in found]
        if missing:
            raise RuntimeError(f"no live data key for {len(missing)} citizen(s) after retries")
        return found

    async def _get_or_create(
        self, executor: Executor, citizens: Sequence[str]
    ) -> list[tuple[DataKey, bool]]:
        """The live keys of ``citizens``, each with whether this statement created it."""
        ids = [uuid.uuid4() for _ in citizens]
        wrapped = [
            self.wrap(key_id, citizen, os.urandom(KEY_BYTES))
            for key_id, citizen in zip(ids, citizens, strict=True)
        ]
        # One statement: the insert's rows come from RETURNING, the existing ones from the
        # select (same snapshot). A key another process inserted after that snapshot is in
        # neither; the caller asks again for those. The select names the citizens with
        # ``= ANY`` so that it is an index lookup: a join with the unnested list was planned
        # as a hash join reading every key of the office.
        rows = await executor.fetch(
            """
            WITH wanted AS (
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])
                    AS w(key_id, citizen, wrapped_key)
            ), created AS (
                INSERT INTO citizen_keys (key_id, citizen, wrapped_key)
                SELECT key_id, citizen, wrapped_key FROM wanted
                ON CONFLICT (citizen) WHERE erased_at IS NULL DO NOTHING
                RETURNING key_id, citizen, wrapped_key
            )
            SELECT key_id, citizen, wrapped_key, true AS created FROM created
            UNION ALL
            SELECT k.key_id, k.citizen, k.wrapped_key, false
              FROM citizen_keys k
             WHERE k.citizen = ANY($2::text[]) AND k.erased_at IS NULL
            """,
            ids,
            list(citizens),
            wrapped,
        )
        return [
            (self.unwrap(row["key_id"], row["citizen"], bytes(row["wrapped_key"])), row["created"])
            for row in rows
        ]

    async def keys_by_id(
        self, executor: Executor, key_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, DataKey | None]:
        """The keys with these ids; None for an erased (or unknown) key."""
        now = self._clock()
        found: dict[uuid.UUID, DataKey | None] = {}
        for key_id in key_ids:
            cached = self._by_id.get(key_id)
            if cached is not None and cached[0] > now:
                found[key_id] = cached[1]
        missing = [key_id for key_id in key_ids if key_id not in found]
        if not missing:
            return found
        rows = await executor.fetch(
            "SELECT key_id, citizen, wrapped_key FROM citizen_keys WHERE key_id = ANY($1::uuid[])",
            missing,
        )
        for row in rows:
            if row["wrapped_key"] is None:
                found[row["key_id"]] = None
                self._by_id[row["key_id"]] = (now + self._ttl, None)
            else:
                key = self.unwrap(row["key_id"], row["citizen"], bytes(row["wrapped_key"]))
                self._remember(key, live=False)
                found[key.key_id] = key
        for key_id in missing:
            if key_id not in found:
                # Not erased by us (erased rows stay): a log restored without its keys.
                log.warning("data key %s is not in citizen_keys; its events read as erased", key_id)
                found[key_id] = None
        return found


# -- which fields are personal -------------------------------------------------------------


class _Absent:
    """No value at a path (a nested field the event does not have)."""


_ABSENT: Final = _Absent()
Steps = tuple[str, ...]


def _steps(path: str) -> Steps:
    return tuple(path.split("."))


def _take(node: Any, steps: Steps) -> tuple[Any, Any]:
    """``node`` without the value at ``steps``, and that value (``_ABSENT`` if none).
    Copies only along the path; the caller's data is never changed."""
    name, many, rest = steps[0].removesuffix("[]"), steps[0].endswith("[]"), steps[1:]
    if not isinstance(node, dict) or name not in node:
        return node, _ABSENT
    clear = dict(node)
    if not rest:
        return clear, clear.pop(name)
    child = node[name]
    if many:
        if not isinstance(child, list | tuple):
            return node, _ABSENT
        parts = [_take(item, rest) for item in child]
        clear[name] = [item for item, _ in parts]
        return clear, [None if value is _ABSENT else value for _, value in parts]
    clear[name], value = _take(child, rest)
    return (clear, value) if value is not _ABSENT else (node, _ABSENT)


def _put(node: Any, steps: Steps, value: Any) -> Any:
    """``node`` with ``value`` at ``steps`` (copied along the path); under ``[]``, a list
    gives each item its own value, anything else is given to every item."""
    name, many, rest = steps[0].removesuffix("[]"), steps[0].endswith("[]"), steps[1:]
    if not isinstance(node, dict):
        return node
    placed = dict(node)
    if not rest:
        placed[name] = value
    elif many:
        items = node.get(name)
        if isinstance(items, list | tuple):
            values = value if isinstance(value, list) else [value] * len(items)
            placed[name] = [_put(item, rest, v) for item, v in zip(items, values, strict=False)]
    elif name in node:
        placed[name] = _put(node[name], rest, value)
    return placed


def _blank_value(value: Any) -> bool:
    """Nothing personal in it: absent, None, empty, or a list of such."""
    if isinstance(value, list | tuple):
        return all(_blank_value(item) for item in value)
    return value is _ABSENT or value is None or value in ("", {})


def _placeholder(event_class: type[Event], name: str) -> Any:
    """What an erased top-level field reads as: its default, else the empty value of its
    type, so the erased event still validates as ``event_class``."""
    field = event_class.model_fields[name]
    if not field.is_required():
        return to_jsonable_python(field.get_default(call_default_factory=True))
    annotation = field.annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        return None
    if annotation is str:
        return ""
    if annotation is dict or origin in (dict, Mapping):
        return {}
    if origin in (tuple, list):
        return []
    raise TypeError(
        f"{event_class.__name__}.{name} is personal but has no placeholder for "
        f"{annotation!r}: give it a default"
    )


@dataclass(frozen=True)
class PersonalFields:
    """What one event class seals: its personal paths, whose they are, their placeholders."""

    event_type: str
    paths: tuple[tuple[str, Steps], ...]
    citizen_field: str | None
    placeholders: Mapping[str, Any]

    @classmethod
    def of(cls, event_class: type[Event]) -> PersonalFields:
        names = sorted(event_class.personal)
        fields = event_class.model_fields
        for name in names:
            head = name.split(".")[0].removesuffix("[]")
            if head not in fields or name.endswith("[]"):
                raise TypeError(f"{event_class.__name__}: no personal field {name!r}")
        citizen_field = event_class.citizen_field
        if citizen_field is not None and citizen_field not in event_class.personal:
            raise TypeError(
                f"{event_class.__name__}: the citizen's number {citizen_field!r} must be personal"
            )
        top = [name for name in names if "." not in name]
        return cls(
            event_type=event_class.event_type,
            paths=tuple((name, _steps(name)) for name in names),
            citizen_field=citizen_field,
            placeholders={name: _placeholder(event_class, name) for name in top},
        )


# -- sealing and opening -----------------------------------------------------------------


def _aad(event_id: uuid.UUID, event_type: str) -> bytes:
    return event_id.bytes + event_type.encode()


class Sealer:
    """Seals the personal fields of events on append and opens them on read.

    Given to :class:`~shared.eventstore.store.EventStore`, which calls :meth:`seal` before
    an append is serialised and :meth:`open` on everything it reads; the consumer framework
    opens the events that arrive through JetStream (published as stored, that is sealed).
    """

    def __init__(
        self, keyring: Keyring, pseudonym_key: bytes, classes: Iterable[type[Event]]
    ) -> None:
        self.keyring = keyring
        self._pseudonym_key = pseudonym_key
        self._fields = {
            event_class.event_type: PersonalFields.of(event_class)
            for event_class in classes
            if event_class.personal
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        """The sealer of the office's internal events (``shared.contracts``)."""
        keyring = Keyring(settings.key, cache_ttl=settings.key_cache_ttl)
        return cls(keyring, settings.key, registry.classes())

    def personal_fields(self, event_type: str) -> PersonalFields | None:
        return self._fields.get(event_type)

    def citizen_of(self, stream_id: str, event_type: str, data: Mapping[str, Any]) -> str | None:
        """The citizen stream whose key seals this event; None when the event names no
        citizen (its number was erased already)."""
        fields = self._fields.get(event_type)
        if fields is None:
            return None
        if fields.citizen_field is None:
            if stream_category(stream_id) != "citizen":
                raise ValueError(
                    f"{event_type} has personal fields but names no citizen, and "
                    f"{stream_id!r} is not a citizen stream"
                )
            return stream_id
        number = data.get(fields.citizen_field)
        if not isinstance(number, str) or not number:
            return None
        return citizen_stream(number, self._pseudonym_key)

    async def seal(
        self, executor: Executor, events: Sequence[tuple[str, NewEvent]]
    ) -> dict[uuid.UUID, dict[str, Any]]:
        """The data to store for each event that has personal fields (by event id), each
        sealed with its citizen's live key (fetched or created in one round trip)."""
        owners: list[tuple[NewEvent, str | None]] = [
            (event, self.citizen_of(stream_id, event.event_type, event.data))
            for stream_id, event in events
            if event.event_type in self._fields
        ]
        if not owners:
            return {}
        keys = await self.keyring.live_keys(
            executor, {citizen for _, citizen in owners if citizen is not None}
        )
        sealed: dict[uuid.UUID, dict[str, Any]] = {}
        for event, citizen in owners:
            data = self.seal_event(event, None if citizen is None else keys[citizen])
            if data is not None:
                sealed[event.event_id] = data
        return sealed

    def seal_event(self, event: NewEvent, key: DataKey | None) -> dict[str, Any] | None:
        """The data to store for ``event``: its clear fields and one box of its personal
        ones; None when it is stored as it is (no personal fields, or all empty).

        ``key`` None: the event names no citizen because it was derived from erased data
        (its number is a placeholder). It is stored erased: personal fields dropped, never
        kept in clear."""
        fields = self._fields.get(event.event_type)
        if fields is None:
            return None
        clear, personal = _split(event.data, fields)
        if key is None:
            if all(_blank_value(value) for value in personal.values()):
                return None
            log.warning("%s names no citizen: its personal fields are dropped", event.event_type)
            return {**clear, SEALED: {"key": None}}
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(personal, separators=(",", ":"), ensure_ascii=False).encode()
        box = nonce + key.cipher.encrypt(nonce, plain, _aad(event.event_id, event.event_type))
        return {**clear, SEALED: {"key": str(key.key_id), "box": base64.b64encode(box).decode()}}

    async def open(
        self, executor: Executor, events: Sequence[RecordedEvent]
    ) -> list[RecordedEvent]:
        """``events`` with their personal fields in clear, or placeholders and ``erased``."""
        key_ids = _key_ids(events)
        keys = await self.keyring.keys_by_id(executor, key_ids) if key_ids else {}
        return [self.open_event(event, keys) for event in events]

    async def prefetch(self, executor: Executor, events: Sequence[RecordedEvent]) -> None:
        """Bring the keys that open ``events`` into the cache with one statement (nothing
        is opened): the events opened one by one afterwards then need no statement each."""
        key_ids = _key_ids(events)
        if key_ids:
            await self.keyring.keys_by_id(executor, key_ids)

    def open_event(
        self, event: RecordedEvent, keys: Mapping[uuid.UUID, DataKey | None]
    ) -> RecordedEvent:
        """``event`` opened with ``keys`` (by key id; None or missing: erased). Raises
        :class:`UnreadableEventError` when its box does not open with its key."""
        marker = event.data.get(SEALED)
        if not isinstance(marker, dict):
            return event  # nothing personal in it, or written before sealing existed
        data = {name: value for name, value in event.data.items() if name != SEALED}
        key = keys.get(_key_id(event, marker["key"])) if marker.get("key") else None
        if key is None:
            return event.model_copy(
                update={"data": self._erased(event.event_type, data), "erased": True}
            )
        for path, value in _unseal(event, key, marker).items():
            data = _put(data, _steps(path), value)
        return event.model_copy(update={"data": data})

    def _erased(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with placeholders where its personal fields were: the same shape as
        the clear data, valid for the event class."""
        fields = self._fields.get(event_type)
        if fields is None:
            return data
        for name, value in fields.placeholders.items():
            data.setdefault(name, value)
        for _, steps in fields.paths:
            if len(steps) > 1:
                data = _put(data, steps, None)
        return data


def _key_ids(events: Sequence[RecordedEvent]) -> set[uuid.UUID]:
    key_ids: set[uuid.UUID] = set()
    for event in events:
        marker = event.data.get(SEALED)
        if isinstance(marker, dict) and marker.get("key"):
            key_ids.add(_key_id(event, marker["key"]))
    return key_ids


def _key_id(event: RecordedEvent, value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as error:
        raise UnreadableEventError(f"event {event.event_id}: bad key id in its seal") from error


def _split(
    data: Mapping[str, Any], fields: PersonalFields
) -> tuple[dict[str, Any], dict[str, Any]]:
    clear: Any = dict(data)
    personal: dict[str, Any] = {}
    for path, steps in fields.paths:
        clear, value = _take(clear, steps)
        if value is not _ABSENT:
            personal[path] = value
    return clear, personal


def _unseal(event: RecordedEvent, key: DataKey, marker: Mapping[str, Any]) -> dict[str, Any]:
    try:
        box = base64.b64decode(str(marker.get("box", "")), validate=True)
        plain = key.cipher.decrypt(
            box[:NONCE_BYTES], box[NONCE_BYTES:], _aad(event.event_id, event.event_type)
        )
        personal = json.loads(plain)
    except (binascii.Error, InvalidTag, ValueError) as error:
        raise UnreadableEventError(
            f"event {event.event_id} ({event.event_type}): its sealed data does not open "
            f"with key {key.key_id} (altered, or not this event's)"
        ) from error
    if not isinstance(personal, dict):
        raise UnreadableEventError(f"event {event.event_id}: its sealed data is not an object")
    return personal
