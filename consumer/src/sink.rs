//! Writes one evaluated batch to PostgreSQL in one transaction, together with the next
//! offset of every partition in it.
//!
//! The transaction first locks the group's offset rows for those partitions and drops every
//! message below the stored offset: those were committed by an earlier run (a replay after a
//! crash) or by another member (a rebalance). So flags, detections, rollups and dead letters
//! are each written exactly once, and two members racing for a partition serialize on the
//! row lock instead of double-counting.

use std::collections::{BTreeMap, HashMap};

use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;

use crate::batch::{Evaluated, Flag, Position};
use crate::Error;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Flags raised, not counting the shadow-only rows.
    pub flags: u64,
    /// Rows stored only for shadow-mode rules' hits.
    pub shadow_only: u64,
    pub detections: u64,
    pub dead_letters: u64,
    pub events: u64,
    /// Messages skipped because an earlier transaction had already stored them.
    pub replayed: u64,
    /// What this transaction wrote, for the metrics: replays add nothing.
    pub detections_by_rule: BTreeMap<String, u64>,
    pub dead_letters_by_reason: BTreeMap<&'static str, u64>,
}

/// A batch carrying more content and raw payload than this leaves its connection's buffers
/// shrunk after it is written; below it they are kept, grown, for the next batch.
const SHRINK_AFTER_BYTES: usize = 1 << 20;

#[tracing::instrument(skip_all, fields(flags = batch.flags.len(), dead_letters = batch.dead_letters.len()))]
pub async fn store_batch(pool: &PgPool, group: &str, batch: &Evaluated) -> Result<Stored, Error> {
    let mut conn = pool.acquire().await?;
    let stored = store_in_transaction(&mut conn, group, batch).await?;
    // A connection keeps the buffer it grew to send a query; every pooled connection would
    // otherwise hold on to the largest batch it ever wrote.
    let heavy: usize = batch
        .flags
        .iter()
        .filter_map(|f| f.content.as_ref().map(|c| c.1.len()))
        .chain(batch.dead_letters.iter().map(|d| d.payload.len()))
        .sum();
    if heavy > SHRINK_AFTER_BYTES {
        conn.shrink_buffers();
    }
    Ok(stored)
}

async fn store_in_transaction(
    conn: &mut PgConnection,
    group: &str,
    batch: &Evaluated,
) -> Result<Stored, Error> {
    let mut tx = conn.begin().await?;
    let next = next_offsets(batch);
    let stored_next = lock_offsets(&mut tx, group, &next).await?;
    let fresh = |p: &Position| {
        stored_next
            .get(&(&*p.topic, p.partition))
            .is_none_or(|&next| p.offset >= next)
    };
    let mut stored = Stored::default();
    let flags: Vec<&Flag> = batch.flags.iter().filter(|f| fresh(&f.position)).collect();
    insert_flags(&mut tx, &flags, batch.rule_set_version, &mut stored).await?;
    stored.events = insert_rollups(&mut tx, batch, &fresh).await?;
    insert_dead_letters(&mut tx, batch, &fresh, &mut stored).await?;
    let kept = stored.events
        + batch
            .dead_letters
            .iter()
            .filter(|d| fresh(&d.position))
            .count() as u64;
    stored.replayed = batch.messages as u64 - kept;
    advance_offsets(&mut tx, group, &next).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Every partition of the batch with the next offset to read, as the batch leaves it.
pub fn next_offsets(batch: &Evaluated) -> BTreeMap<(&str, i32), i64> {
    let mut next = BTreeMap::new();
    let positions = batch
        .traffic
        .iter()
        .map(|t| &t.position)
        .chain(batch.dead_letters.iter().map(|d| &d.position));
    for p in positions {
        let entry = next.entry((&*p.topic, p.partition)).or_insert(p.offset + 1);
        *entry = (*entry).max(p.offset + 1);
    }
    next
}

/// Creates missing offset rows and locks them all, in key order so concurrent members
/// cannot deadlock; returns the stored next offsets.
async fn lock_offsets<'a>(
    tx: &mut PgConnection,
    group: &str,
    next: &BTreeMap<(&'a str, i32), i64>,
) -> Result<HashMap<(&'a str, i32), i64>, Error> {
    let topics: Vec<&str> = next.keys().map(|(t, _)| *t).collect();
    let partitions: Vec<i32> = next.keys().map(|(_, p)| *p).collect();
    let rows = sqlx::query!(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
         SELECT $1, t, p, 0 FROM UNNEST($2::text[], $3::int[]) AS x(t, p)
         ORDER BY t, p
         ON CONFLICT (group_id, topic, partition)
         DO UPDATE SET next_offset = consumer_offsets.next_offset
         RETURNING topic, partition, next_offset",
        group,
        &topics as &[&str],
        &partitions
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut stored = HashMap::new();
    for row in rows {
        if let Some(t) = topics.iter().find(|t| **t == row.topic) {
            stored.insert((*t, row.partition), row.next_offset);
        }
    }
    Ok(stored)
}

async fn advance_offsets(
    tx: &mut PgConnection,
    group: &str,
    next: &BTreeMap<(&str, i32), i64>,
) -> Result<(), Error> {
    let topics: Vec<&str> = next.keys().map(|(t, _)| *t).collect();
    let partitions: Vec<i32> = next.keys().map(|(_, p)| *p).collect();
    let offsets: Vec<i64> = next.values().copied().collect();
    sqlx::query!(
        "UPDATE consumer_offsets o SET next_offset = x.n, updated_at = now()
         FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS x(t, p, n)
         WHERE o.group_id = $1 AND o.topic = x.t AND o.partition = x.p AND o.next_offset < x.n",
        group,
        &topics as &[&str],
        &partitions,
        &offsets
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_flags(
    tx: &mut PgConnection,
    f: &[&Flag],
    rule_set_version: u64,
    stored: &mut Stored,
) -> Result<(), Error> {
    if f.is_empty() {
        return Ok(());
    }
    let c = FlagColumns::of(f);
    let rule_set_version = i64::try_from(rule_set_version).unwrap_or(i64::MAX);
    let inserted = sqlx::query!(
        "INSERT INTO flags (event_id, event_time, src_ip, provider, model, endpoint, method,
                            status_code, duration_ms, score, severity,
                            kafka_topic, kafka_partition, kafka_offset,
                            user_id, app, team, tokens_in, tokens_out, cost_usd,
                            categories, rule_set_version, content_mode, content, shadow_only)
         SELECT e, ts, ip::inet, pr, mo, en, me, sc, du, s, sev, t, p, o, u, a, tm, ti, tt, c,
                ARRAY(SELECT jsonb_array_elements_text(cat)), $22, cm, co, so
         FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::int[], $9::bigint[], $10::smallint[],
                     $11::text[], $12::text[], $13::int[], $14::bigint[], $15::text[],
                     $16::text[], $17::text[], $18::bigint[], $19::bigint[],
                     $20::float8[], $21::jsonb[], $23::text[], $24::bytea[], $25::bool[])
              AS x(e, ts, ip, pr, mo, en, me, sc, du, s, sev, t, p, o, u, a, tm, ti, tt, c, cat, cm,
                   co, so)
         ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING
         RETURNING id, kafka_topic, kafka_partition, kafka_offset",
        &c.event_ids as &[&str],
        &c.event_times,
        &c.src_ips,
        &c.providers as &[&str],
        &c.models as &[&str],
        &c.endpoints as &[Option<&str>],
        &c.methods as &[Option<&str>],
        &c.status_codes as &[Option<i32>],
        &c.durations_ms as &[Option<i64>],
        &c.scores,
        &c.severities as &[&str],
        &c.topics as &[&str],
        &c.partitions,
        &c.offsets,
        &c.users as &[Option<&str>],
        &c.apps as &[Option<&str>],
        &c.teams as &[Option<&str>],
        &c.tokens_in as &[Option<i64>],
        &c.tokens_out as &[Option<i64>],
        &c.costs_usd as &[Option<f64>],
        &c.categories,
        rule_set_version,
        &c.content_modes as &[&str],
        &c.contents as &[Option<&[u8]>],
        &c.shadow_only
    )
    .fetch_all(&mut *tx)
    .await?;

    // Only flags inserted now get detections: a replayed flag already has its own.
    let mut d = DetectionColumns::default();
    let by_position: HashMap<(&str, i32, i64), &Flag> = f
        .iter()
        .map(|x| {
            (
                (&*x.position.topic, x.position.partition, x.position.offset),
                *x,
            )
        })
        .collect();
    // Shadow-only rows are never alerted on.
    let mut alerted = Vec::with_capacity(inserted.len());
    for row in &inserted {
        let flag_id = &row.id;
        let Some(flag) = by_position.get(&(
            row.kafka_topic.as_str(),
            row.kafka_partition,
            row.kafka_offset,
        )) else {
            continue;
        };
        if flag.shadow_only() {
            stored.shadow_only += 1;
        } else {
            alerted.push(*flag_id);
        }
        for x in &flag.verdict.detections {
            *stored
                .detections_by_rule
                .entry(x.rule_id.clone())
                .or_default() += 1;
            d.flag_ids.push(*flag_id);
            d.rule_ids.push(x.rule_id.as_str());
            d.rule_versions
                .push(i32::try_from(x.rule_version).unwrap_or(i32::MAX));
            d.fields.push(x.field.as_str());
            d.starts.push(i32::try_from(x.start).unwrap_or(i32::MAX));
            d.ends.push(i32::try_from(x.end).unwrap_or(i32::MAX));
            d.excerpts.push(x.excerpt.as_str());
            d.detectors.push(x.detector.as_deref());
            d.decoded_from.push(x.decoded_from.map(|e| e.as_str()));
            d.shadow.push(x.shadow);
        }
    }
    stored.flags = alerted.len() as u64;
    // In this transaction, so an alert is sent for every stored flag and for no other.
    sqlx::query!(
        "INSERT INTO alert_outbox (flag_id) SELECT unnest($1::bigint[])",
        &alerted
    )
    .execute(&mut *tx)
    .await?;
    if d.flag_ids.is_empty() {
        return Ok(());
    }
    let result = sqlx::query!(
        "INSERT INTO detections (flag_id, rule_id, rule_version, field, span_start, span_end,
                                 excerpt, detector, decoded_from, shadow)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::int[], $4::text[], $5::int[],
                              $6::int[], $7::text[], $8::text[], $9::text[], $10::bool[])",
        &d.flag_ids,
        &d.rule_ids as &[&str],
        &d.rule_versions,
        &d.fields as &[&str],
        &d.starts,
        &d.ends,
        &d.excerpts as &[&str],
        &d.detectors as &[Option<&str>],
        &d.decoded_from as &[Option<&str>],
        &d.shadow
    )
    .execute(&mut *tx)
    .await?;
    stored.detections = result.rows_affected();
    Ok(())
}

type RollupKey<'a> = (OffsetDateTime, &'a str, &'a str, &'a str);

/// Adds the batch's fresh events to the per-minute rollups; returns how many were counted.
async fn insert_rollups(
    tx: &mut PgConnection,
    batch: &Evaluated,
    fresh: &impl Fn(&Position) -> bool,
) -> Result<u64, Error> {
    // Sorted keys: concurrent members update shared rows in the same order, so they wait on
    // each other instead of deadlocking. Token and cost sums saturate, here and in SQL: an
    // event may claim up to i64::MAX of either, and an overflow would fail the batch on every
    // retry, blocking its partitions.
    let mut sums: BTreeMap<RollupKey<'_>, [i64; 5]> = BTreeMap::new();
    let mut counted = 0;
    for t in batch.traffic.iter().filter(|t| fresh(&t.position)) {
        let s = sums
            .entry((t.minute, &t.provider, &t.model, &t.app))
            .or_default();
        s[0] += 1;
        s[1] += i64::from(t.flagged);
        s[2] = s[2].saturating_add(t.tokens_in);
        s[3] = s[3].saturating_add(t.tokens_out);
        s[4] = s[4].saturating_add(t.cost_micros);
        counted += 1;
    }
    if sums.is_empty() {
        return Ok(0);
    }
    let column = |i: usize| sums.values().map(|s| s[i]).collect::<Vec<_>>();
    let minutes: Vec<OffsetDateTime> = sums.keys().map(|k| k.0).collect();
    let providers: Vec<&str> = sums.keys().map(|k| k.1).collect();
    let models: Vec<&str> = sums.keys().map(|k| k.2).collect();
    let apps: Vec<&str> = sums.keys().map(|k| k.3).collect();
    sqlx::query!(
        "INSERT INTO traffic_rollups AS r (minute, provider, model, app, events, flagged,
                                           tokens_in, tokens_out, cost_micros)
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[],
                              $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
         ON CONFLICT (minute, provider, model, app) DO UPDATE SET
             events = r.events + EXCLUDED.events,
             flagged = r.flagged + EXCLUDED.flagged,
             tokens_in = LEAST(r.tokens_in::numeric + EXCLUDED.tokens_in, $10::bigint)::bigint,
             tokens_out = LEAST(r.tokens_out::numeric + EXCLUDED.tokens_out, $10::bigint)::bigint,
             cost_micros = LEAST(r.cost_micros::numeric + EXCLUDED.cost_micros, $10::bigint)::bigint",
        &minutes,
        &providers as &[&str],
        &models as &[&str],
        &apps as &[&str],
        &column(0),
        &column(1),
        &column(2),
        &column(3),
        &column(4),
        i64::MAX
    )
    .execute(&mut *tx)
    .await?;
    Ok(counted)
}

async fn insert_dead_letters(
    tx: &mut PgConnection,
    batch: &Evaluated,
    fresh: &impl Fn(&Position) -> bool,
    stored: &mut Stored,
) -> Result<(), Error> {
    let d: Vec<_> = batch
        .dead_letters
        .iter()
        .filter(|d| fresh(&d.position))
        .collect();
    if d.is_empty() {
        return Ok(());
    }
    for x in &d {
        *stored.dead_letters_by_reason.entry(x.code).or_default() += 1;
    }
    let topics: Vec<&str> = d.iter().map(|x| &*x.position.topic).collect();
    let partitions: Vec<i32> = d.iter().map(|x| x.position.partition).collect();
    let offsets: Vec<i64> = d.iter().map(|x| x.position.offset).collect();
    let codes: Vec<&str> = d.iter().map(|x| x.code).collect();
    let errors: Vec<&str> = d.iter().map(|x| x.error.as_str()).collect();
    let payloads: Vec<&[u8]> = d.iter().map(|x| x.payload.as_slice()).collect();
    let sizes: Vec<i32> = d
        .iter()
        .map(|x| i32::try_from(x.payload_size).unwrap_or(i32::MAX))
        .collect();
    let result = sqlx::query!(
        "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, error_code, error,
                                   payload, payload_size)
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[],
                              $6::bytea[], $7::int[])
         ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
        &topics as &[&str],
        &partitions,
        &offsets,
        &codes as &[&str],
        &errors as &[&str],
        &payloads as &[&[u8]],
        &sizes
    )
    .execute(&mut *tx)
    .await?;
    stored.dead_letters = result.rows_affected();
    Ok(())
}

/// Detection rows as one array per column, for an UNNEST insert.
#[derive(Default)]
struct DetectionColumns<'a> {
    flag_ids: Vec<i64>,
    rule_ids: Vec<&'a str>,
    rule_versions: Vec<i32>,
    fields: Vec<&'a str>,
    starts: Vec<i32>,
    ends: Vec<i32>,
    excerpts: Vec<&'a str>,
    detectors: Vec<Option<&'a str>>,
    decoded_from: Vec<Option<&'static str>>,
    shadow: Vec<bool>,
}

/// Flag rows as one array per column, for an UNNEST insert.
struct FlagColumns<'a> {
    event_ids: Vec<&'a str>,
    event_times: Vec<OffsetDateTime>,
    src_ips: Vec<String>,
    providers: Vec<&'a str>,
    models: Vec<&'a str>,
    endpoints: Vec<Option<&'a str>>,
    methods: Vec<Option<&'a str>>,
    status_codes: Vec<Option<i32>>,
    durations_ms: Vec<Option<i64>>,
    scores: Vec<i16>,
    severities: Vec<&'static str>,
    topics: Vec<&'a str>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    users: Vec<Option<&'a str>>,
    apps: Vec<Option<&'a str>>,
    teams: Vec<Option<&'a str>>,
    tokens_in: Vec<Option<i64>>,
    tokens_out: Vec<Option<i64>>,
    costs_usd: Vec<Option<f64>>,
    categories: Vec<serde_json::Value>,
    content_modes: Vec<&'a str>,
    contents: Vec<Option<&'a [u8]>>,
    shadow_only: Vec<bool>,
}

impl<'a> FlagColumns<'a> {
    fn of(f: &[&'a Flag]) -> FlagColumns<'a> {
        // Counts saturate: an event may claim any u64, a column holds an i64.
        let count = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        FlagColumns {
            event_ids: f.iter().map(|x| x.event.id.as_str()).collect(),
            event_times: f.iter().map(|x| x.event.timestamp).collect(),
            src_ips: f.iter().map(|x| x.event.src_ip.to_string()).collect(),
            providers: f.iter().map(|x| x.event.provider.as_str()).collect(),
            models: f.iter().map(|x| x.event.model.as_str()).collect(),
            endpoints: f.iter().map(|x| x.event.endpoint.as_deref()).collect(),
            methods: f.iter().map(|x| x.event.method.as_deref()).collect(),
            status_codes: f
                .iter()
                .map(|x| x.event.status_code.map(i32::from))
                .collect(),
            durations_ms: f.iter().map(|x| count(x.event.duration_ms)).collect(),
            scores: f.iter().map(|x| x.verdict.score.min(100) as i16).collect(),
            severities: f
                .iter()
                .map(|x| x.verdict.severity.map_or("low", |s| s.as_str()))
                .collect(),
            topics: f.iter().map(|x| &*x.position.topic).collect(),
            partitions: f.iter().map(|x| x.position.partition).collect(),
            offsets: f.iter().map(|x| x.position.offset).collect(),
            users: f.iter().map(|x| x.event.user.as_deref()).collect(),
            apps: f.iter().map(|x| x.event.app.as_deref()).collect(),
            teams: f.iter().map(|x| x.event.team.as_deref()).collect(),
            tokens_in: f.iter().map(|x| count(x.event.tokens_in)).collect(),
            tokens_out: f.iter().map(|x| count(x.event.tokens_out)).collect(),
            costs_usd: f
                .iter()
                .map(|x| x.event.cost_usd.filter(|c| c.is_finite()))
                .collect(),
            categories: f.iter().map(|x| serde_json::json!(x.categories)).collect(),
            content_modes: f
                .iter()
                .map(|x| x.content.as_ref().map_or("none", |c| c.0.as_str()))
                .collect(),
            contents: f
                .iter()
                .map(|x| x.content.as_ref().map(|c| c.1.as_slice()))
                .collect(),
            shadow_only: f.iter().map(|x| x.shadow_only()).collect(),
        }
    }
}
