-- An append batch in one round trip (see shared/eventstore/store.py, "How that stays fast").
--
-- The function takes the append lock, reads what the batch's decision needs and, when every
-- request of the batch is a plain new append (no event id or inbox record stored already,
-- every expected version met), writes them all and wakes tailing readers. Otherwise it
-- writes nothing and returns appended = false: the store then decides request by request in
-- Python, under the same lock, so a conflict, a repetition or a repeated inbox record is
-- still one caller's outcome and never fails another's.
--
-- Each statement of a VOLATILE plpgsql function takes a fresh snapshot under READ COMMITTED,
-- so everything read after the lock includes every earlier append. Under another isolation
-- level that would not hold: the function then declines before taking the lock.
CREATE FUNCTION append_events(
    lock_key         bigint,
    event_ids        uuid[],
    event_parts      integer[],      -- each event's part (1-based index into the part arrays)
    event_offsets    integer[],      -- each event's version above its stream's current one
    event_types      text[],
    schema_versions  integer[],
    event_data       text[],         -- JSON
    event_metadata   text[],         -- JSON
    occurred         timestamptz[],
    part_streams     text[],
    part_categories  text[],
    part_expected    integer[],      -- -1: any version
    inbox_consumers  text[],
    inbox_messages   text[],
    channel          text,
    OUT appended     boolean,
    OUT head         bigint,         -- the position before the first new event
    OUT recorded     timestamptz,
    OUT versions     integer[]       -- each part's stream version before the batch
) LANGUAGE plpgsql VOLATILE
-- The statements' plans are made once per connection: planning them for each call (custom
-- plans for the array arguments) would cost more than running them. A plan made while the
-- tables are small must still hold when they are large: every lookup goes through an index.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
BEGIN
    appended := false;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(lock_key);
    -- One statement after the lock (one snapshot): read, decide, write.
    WITH state AS (
        SELECT NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (event_ids))
               AND NOT EXISTS (
                   SELECT 1
                     FROM unnest(inbox_consumers, inbox_messages) AS w(consumer, message_id),
                          LATERAL (SELECT 1 FROM inbox i
                                    WHERE i.consumer = w.consumer
                                      AND i.message_id = w.message_id
                                    LIMIT 1) AS stored
               ) AS fresh,
               coalesce((SELECT array_agg(coalesce((SELECT max(e.stream_version) FROM events e
                                                     WHERE e.stream_id = s.stream_id), 0)
                                          ORDER BY s.n)
                           FROM unnest(part_streams) WITH ORDINALITY AS s(stream_id, n)),
                        '{}') AS stream_versions,
               coalesce((SELECT max(e.position) FROM events e), 0) AS last_position,
               -- Read after the lock: recorded_at never goes backwards along positions.
               clock_timestamp() AS now
    ), decision AS (
        SELECT state.*,
               state.fresh AND NOT EXISTS (
                   SELECT 1 FROM unnest(part_expected, state.stream_versions)
                                 AS x(expected, version)
                    WHERE x.expected >= 0 AND x.expected <> x.version
               ) AS ok
          FROM state
    ), new_events AS (
        INSERT INTO events (position, event_id, stream_id, stream_version, category,
                            event_type, schema_version, data, metadata, occurred_at,
                            recorded_at)
        SELECT d.last_position + x.n, x.event_id, part_streams[x.part],
               d.stream_versions[x.part] + x.k, part_categories[x.part], x.event_type,
               x.schema_version, x.data::jsonb, x.metadata::jsonb, x.occurred_at, d.now
          FROM decision d,
               unnest(event_ids, event_parts, event_offsets, event_types, schema_versions,
                      event_data, event_metadata, occurred)
               WITH ORDINALITY AS x(event_id, part, k, event_type, schema_version, data,
                                    metadata, occurred_at, n)
         WHERE d.ok
    ), new_inbox AS (
        INSERT INTO inbox (consumer, message_id)
        SELECT w.consumer, w.message_id
          FROM decision d, unnest(inbox_consumers, inbox_messages) AS w(consumer, message_id)
         WHERE d.ok
    )
    SELECT d.ok, d.last_position, d.now, d.stream_versions
      INTO appended, head, recorded, versions
      FROM decision d
           -- Tailing readers are woken on commit with the last new position.
           LEFT JOIN LATERAL (
               SELECT pg_notify(channel, (d.last_position + cardinality(event_ids))::text)
                WHERE d.ok AND cardinality(event_ids) > 0
           ) AS woken ON true;
END;
$$;
