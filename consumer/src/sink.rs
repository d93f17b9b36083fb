//! Writes one evaluated batch to PostgreSQL in one transaction.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::batch::{Evaluated, Flag};
use crate::Error;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub flags: u64,
    pub detections: u64,
    pub dead_letters: u64,
}

/// Stores flags, their detections and dead letters atomically. Rows are keyed by their
/// Kafka position, so storing a replayed batch again inserts nothing.
#[tracing::instrument(skip_all, fields(flags = batch.flags.len(), dead_letters = batch.dead_letters.len()))]
pub async fn store_batch(pool: &PgPool, batch: &Evaluated) -> Result<Stored, Error> {
    let mut tx = pool.begin().await?;
    let mut stored = Stored::default();

    if !batch.flags.is_empty() {
        let f = &batch.flags;
        let inserted: Vec<(i64, String, i32, i64)> = sqlx::query_as(
            "INSERT INTO flags (event_id, event_time, src_ip, provider, model, endpoint, method,
                                status_code, duration_ms, score, severity,
                                kafka_topic, kafka_partition, kafka_offset)
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[]::inet[], $4::text[],
                                  $5::text[], $6::text[], $7::text[], $8::int[], $9::bigint[],
                                  $10::smallint[], $11::text[], $12::text[], $13::int[], $14::bigint[])
             ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING
             RETURNING id, kafka_topic, kafka_partition, kafka_offset",
        )
        .bind(f.iter().map(|x| x.event.id.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.event.timestamp).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.event.src_ip.to_string()).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.event.provider.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.event.model.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.event.endpoint.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.event.method.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.event.status_code.map(i32::from)).collect::<Vec<_>>())
        .bind(
            f.iter()
                .map(|x| x.event.duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)))
                .collect::<Vec<_>>(),
        )
        .bind(f.iter().map(|x| x.verdict.score as i16).collect::<Vec<_>>())
        .bind(
            f.iter()
                .map(|x| x.verdict.severity.map_or("low", |s| s.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(f.iter().map(|x| x.topic.clone()).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.partition).collect::<Vec<_>>())
        .bind(f.iter().map(|x| x.offset).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        stored.flags = inserted.len() as u64;

        // Only flags inserted now get detections: a replayed flag already has its own.
        let mut d = DetectionColumns::default();
        let by_position: HashMap<(&str, i32, i64), &Flag> = f
            .iter()
            .map(|x| ((x.topic.as_str(), x.partition, x.offset), x))
            .collect();
        for (flag_id, topic, partition, offset) in &inserted {
            let Some(flag) = by_position.get(&(topic.as_str(), *partition, *offset)) else {
                continue;
            };
            for x in &flag.verdict.detections {
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
        if !d.flag_ids.is_empty() {
            let result = sqlx::query(
                "INSERT INTO detections (flag_id, rule_id, rule_version, field, span_start, span_end,
                                         excerpt, detector, decoded_from, shadow)
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::int[], $4::text[], $5::int[],
                                      $6::int[], $7::text[], $8::text[], $9::text[], $10::bool[])",
            )
            .bind(d.flag_ids)
            .bind(d.rule_ids)
            .bind(d.rule_versions)
            .bind(d.fields)
            .bind(d.starts)
            .bind(d.ends)
            .bind(d.excerpts)
            .bind(d.detectors)
            .bind(d.decoded_from)
            .bind(d.shadow)
            .execute(&mut *tx)
            .await?;
            stored.detections = result.rows_affected();
        }
    }

    if !batch.dead_letters.is_empty() {
        let d = &batch.dead_letters;
        let result = sqlx::query(
            "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, error_code, error,
                                       payload, payload_size)
             SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[],
                                  $6::bytea[], $7::int[])
             ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
        )
        .bind(d.iter().map(|x| x.topic.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.partition).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.offset).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.code).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.error.as_str()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.payload.as_slice()).collect::<Vec<_>>())
        .bind(
            d.iter()
                .map(|x| i32::try_from(x.payload_size).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        stored.dead_letters = result.rows_affected();
    }

    tx.commit().await?;
    Ok(stored)
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
