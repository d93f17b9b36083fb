//! Reading flags: search, one flag, and the streamed export.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::types::Json as SqlJson;
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::filter::{Cursor, Filter, FlagQuery};
use crate::auth::{ClientIp, Principal};
use crate::extract::{Params, Path};
use crate::state::AppState;
use crate::store::audit::{self, Entry};
use crate::Error;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;
const EXPORT_PAGE: i64 = 1_000;

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Flag {
    pub id: i64,
    pub event_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ingested_at: OffsetDateTime,
    pub src_ip: String,
    pub provider: String,
    pub model: String,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub status_code: Option<i32>,
    pub duration_ms: Option<i64>,
    pub user: Option<String>,
    pub app: Option<String>,
    pub team: Option<String>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub cost_usd: Option<f64>,
    pub score: i16,
    pub severity: String,
    pub categories: Vec<String>,
    pub status: String,
    pub assignee: Option<String>,
    pub rule_set_version: i64,
    pub content_mode: String,
    /// Stored only for shadow-mode rules' hits: not a finding, never alerted on.
    pub shadow_only: bool,
    #[schema(value_type = Vec<FlagDetection>)]
    pub detections: SqlJson<Value>,
}

/// One detection of a flag, as `detections` holds it (built in SQL, documented here).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FlagDetection {
    rule_id: String,
    rule_version: i32,
    field: String,
    start: i32,
    end: i32,
    /// Redacted: never the full match.
    excerpt: String,
    detector: Option<String>,
    decoded_from: Option<String>,
    shadow: bool,
}

/// A page of the flag search.
#[derive(Serialize, ToSchema)]
pub struct FlagPage {
    flags: Vec<Flag>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
    /// With `count=true`: how many flags match in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
}

const SELECT: &str =
    "SELECT f.id, f.event_id, f.event_time, f.ingested_at, host(f.src_ip) AS src_ip,
        f.provider, f.model, f.endpoint, f.method, f.status_code, f.duration_ms,
        f.user_id AS user, f.app, f.team, f.tokens_in, f.tokens_out, f.cost_usd,
        f.score, f.severity, f.categories, f.status, f.assignee, f.rule_set_version,
        f.content_mode, f.shadow_only,
        COALESCE((SELECT json_agg(json_build_object(
                      'rule_id', d.rule_id, 'rule_version', d.rule_version,
                      'field', d.field, 'start', d.span_start, 'end', d.span_end,
                      'excerpt', d.excerpt, 'detector', d.detector,
                      'decoded_from', d.decoded_from, 'shadow', d.shadow) ORDER BY d.id)
                  FROM detections d WHERE d.flag_id = f.id), '[]'::json) AS detections
 FROM flags f";

/// One page of flags matching `filter`, newest first, and the cursor of the next page.
pub async fn page(
    db: impl PgExecutor<'_>,
    filter: &Filter,
    limit: i64,
) -> Result<(Vec<Flag>, Option<Cursor>), Error> {
    let mut qb = QueryBuilder::<Postgres>::new(SELECT);
    filter.push_where(&mut qb, true)?;
    qb.push(" ORDER BY f.event_time DESC, f.id DESC LIMIT ")
        .push_bind(limit + 1);
    let mut flags: Vec<Flag> = qb.build_query_as().fetch_all(db).await?;
    let next = if flags.len() as i64 > limit {
        flags.truncate(limit as usize);
        flags.last().map(|f| Cursor::of(f.event_time, f.id))
    } else {
        None
    };
    Ok((flags, next))
}

pub async fn list(
    State(state): State<AppState>,
    Params(query): Params<FlagQuery>,
) -> Result<Json<FlagPage>, Error> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
        ));
    }
    let filter = Filter::parse(&query)?;
    let mut tx = state.heavy_read().await?;
    let (flags, next) = page(&mut *tx, &filter, limit).await?;
    let total = if query.count == Some(true) {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT count(*) FROM flags f");
        filter.push_where(&mut qb, false)?;
        Some(qb.build_query_scalar().fetch_one(&mut *tx).await?)
    } else {
        None
    };
    Ok(Json(FlagPage {
        flags,
        next_cursor: next.map(|c| c.encode()),
        total,
    }))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Flag>, Error> {
    let mut qb = QueryBuilder::<Postgres>::new(SELECT);
    qb.push(" WHERE f.id = ").push_bind(id);
    let flag: Option<Flag> = qb.build_query_as().fetch_optional(&state.pool).await?;
    flag.map(Json).ok_or(Error::NotFound)
}

/// Streams the matching flags (all, or the first `limit`), page by page, each page its own
/// short query so the export holds no long transaction. Content is never exported;
/// excerpts are redacted. The audit row is written before the first byte and completed
/// with the real outcome; a failure after the headers ends the body with an error, so the
/// client sees a broken transfer, not a short file that looks complete.
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    ClientIp(ip): ClientIp,
    Params(query): Params<FlagQuery>,
) -> Result<Response, Error> {
    let csv = match query.format.as_deref() {
        None | Some("ndjson") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(Error::invalid(
                "format",
                format!("format must be ndjson or csv, got `{other}`"),
            ))
        }
    };
    if query.limit.is_some_and(|l| l < 1) {
        return Err(Error::invalid("limit", "limit must be at least 1"));
    }
    let mut filter = Filter::parse(&query)?;
    let audit_id = audit::start(
        &state.pool,
        Entry {
            actor: &principal.name,
            action: "export",
            target: None,
            success: false,
            ip,
            details: json!({ "format": if csv { "csv" } else { "ndjson" },
                             "query": format!("{query:?}") }),
        },
    )
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let outcome = stream_pages(&state, &mut filter, query.limit, csv, &tx).await;
        let (success, details) = match &outcome {
            Ok(rows) => (true, json!({ "outcome": "completed", "rows": rows })),
            Err((rows, e)) => (
                false,
                json!({ "outcome": "failed", "rows": rows, "error": e }),
            ),
        };
        if let Err((_, e)) = outcome {
            tracing::error!(error = %e, "export failed after it started");
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
        if let Err(e) = audit::finish(&state.pool, audit_id, success, details).await {
            tracing::error!(error = %e, audit_id, "could not record an export's outcome");
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Sends the export's pages; the rows sent, or the rows sent before it failed and why.
async fn stream_pages(
    state: &AppState,
    filter: &mut Filter,
    limit: Option<i64>,
    csv: bool,
    out: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<i64, (i64, String)> {
    let mut sent = 0;
    let gone = |sent| Err((sent, "the client went away".to_owned()));
    if csv && out.send(Ok(Bytes::from(CSV_HEADER))).await.is_err() {
        return gone(sent);
    }
    loop {
        let want = limit.map_or(EXPORT_PAGE, |l| (l - sent).min(EXPORT_PAGE));
        if want <= 0 {
            return Ok(sent);
        }
        let page = match state.heavy_read().await {
            Ok(mut tx) => page(&mut *tx, filter, want).await,
            Err(e) => Err(e),
        };
        let (flags, next) = page.map_err(|e| (sent, e.to_string()))?;
        let mut chunk = String::new();
        for flag in &flags {
            if csv {
                csv_row(&mut chunk, flag);
            } else if let Ok(line) = serde_json::to_string(flag) {
                chunk.push_str(&line);
                chunk.push('\n');
            }
        }
        if out.send(Ok(Bytes::from(chunk))).await.is_err() {
            return gone(sent);
        }
        sent += flags.len() as i64;
        match next {
            Some(c) => filter.cursor = Some(c),
            None => return Ok(sent),
        }
    }
}

const CSV_HEADER: &str = "id,event_id,event_time,src_ip,provider,model,user,app,score,severity,status,assignee,categories,rule_ids,shadow_only\n";

fn csv_row(out: &mut String, f: &Flag) {
    let rules: Vec<&str> = f
        .detections
        .0
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["rule_id"].as_str())
        .collect();
    let time = super::time::format(f.event_time);
    let fields = [
        f.id.to_string(),
        f.event_id.clone(),
        time,
        f.src_ip.clone(),
        f.provider.clone(),
        f.model.clone(),
        f.user.clone().unwrap_or_default(),
        f.app.clone().unwrap_or_default(),
        f.score.to_string(),
        f.severity.clone(),
        f.status.clone(),
        f.assignee.clone().unwrap_or_default(),
        f.categories.join(";"),
        rules.join(";"),
        f.shadow_only.to_string(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push('\n');
}

/// RFC 4180 quoting, and a leading `'` on values a spreadsheet would run as a formula
/// (event ids and users come from the traffic, so they are attacker-controlled). Any value
/// holding a separator some spreadsheet splits on (`,` `;` tab `|`) is quoted, so no part
/// of it can become a cell of its own that starts a formula.
fn csv_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || value.contains([',', ';', '\t', '|', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("-1", "\"'-1\""),
            ("evt;=1+2", "\"evt;=1+2\""),
            ("a\t@SUM(1)", "\"a\t@SUM(1)\""),
            ("x|=cmd", "\"x|=cmd\""),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            csv_field(&mut out, input);
            assert_eq!(out, expected, "{input}");
        }
    }
}
