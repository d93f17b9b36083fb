//! The OpenAPI document, generated from the route table, and a documentation page that
//! renders it without anything from the network.

use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{endpoints, Response200};

/// Resources whose `{id}` is a number (flags, API keys, deliveries); other ids are names.
const INTEGER_IDS: [&str; 4] = [
    "/api/v1/flags/{id}",
    "/api/v1/rules/backtests/{id}",
    "/api/v1/admin/api-keys/{id}",
    "/api/v1/alerts/deliveries/{id}",
];

pub async fn openapi() -> Json<Value> {
    Json(document())
}

pub fn document() -> Value {
    let mut paths = Map::new();
    let mut schemas = Vec::new();
    let error =
        json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    let fails = |description: &str| json!({ "description": description, "content": error });
    for e in endpoints() {
        let mut params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let numeric = INTEGER_IDS.iter().any(|p| e.path.starts_with(p));
                let schema = if numeric {
                    json!({ "type": "integer", "format": "int64" })
                } else {
                    json!({ "type": "string" })
                };
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        if let Some(query) = e.query {
            params.extend(
                query()
                    .into_iter()
                    .filter_map(|p| serde_json::to_value(p).ok()),
            );
        }
        let ok = match e.response {
            Response200::Json(body) => {
                (body.collect)(&mut schemas);
                json!({ "description": "OK", "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{}", (body.name)()) } } } })
            }
            Response200::Other(media) => {
                json!({ "description": "OK", "content": { media: { "schema": { "type": "string" } } } })
            }
        };
        // Every failure the API can answer with, each with the one error body.
        let mut responses = json!({
            "200": ok,
            "400": fails("Malformed request: unreadable query string, body or header"),
            "408": fails("The request took longer than the API allows"),
            "422": fails("Invalid input; `field` names the offending one"),
            "429": fails("Too many requests from this client; see Retry-After"),
            "503": fails("The database is unavailable, or the query ran over its time limit"),
            "500": fails("Internal error (logged with the request id)"),
        });
        if e.path.contains('{') {
            responses["404"] = fails("No such resource");
        }
        if e.path == "/api/v1/auth/login" {
            responses["401"] = fails("Unknown user, wrong password or disabled account");
        }
        if e.path == "/ready" {
            // Not ready is a 503 with the same report.
            responses["503"] = responses["200"].clone();
            responses["503"]["description"] = "Not ready".into();
        }
        let mut op = json!({
            "summary": e.summary,
            "operationId": format!("{} {}", e.method, e.path),
            "tags": [e.path.trim_start_matches("/api/v1/").split('/').next().unwrap_or("")],
            "parameters": params,
        });
        if let Some(body) = e.request {
            (body.collect)(&mut schemas);
            op["requestBody"] = json!({ "required": true, "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{}", (body.name)()) } } } });
            responses["409"] = fails("Conflicts with the current state");
            responses["413"] = fails("Body too large");
            responses["415"] = fails("Body is not JSON");
        } else if e.method != "GET" {
            responses["409"] = fails("Conflicts with the current state");
        }
        match e.role {
            Some(role) => {
                op["security"] = json!([{ "bearer": [] }, { "apiKey": [] }]);
                op["x-required-role"] = json!(role);
                responses["401"] = fails("Missing, invalid or expired credentials");
                responses["403"] = fails(&format!("Needs the {} role", role.as_str()));
            }
            None => op["security"] = json!([]),
        }
        op["responses"] = responses;
        paths.entry(e.path).or_insert_with(|| json!({}))[e.method.to_ascii_lowercase()] = op;
    }
    let mut components: Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect();
    components.insert(
        "Error".into(),
        json!({
            "type": "object",
            "properties": { "error": { "type": "object", "properties": {
                "code": { "type": "string" }, "message": { "type": "string" }, "field": { "type": "string" } },
                "required": ["code", "message"] } },
            "required": ["error"],
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Flagstream API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Flagged LLM traffic for the security team. Roles: viewer < analyst < admin; each role can do all the ones before it can.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A JWT from /api/v1/auth/login, or an API key" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" },
            },
            "schemas": components,
        },
    })
}

/// The role × endpoint matrix, as Markdown (`flagstream-api routes`; the README has it).
pub fn matrix() -> String {
    let mut out =
        String::from("| Method | Path | viewer | analyst | admin | |\n|---|---|---|---|---|---|\n");
    for e in endpoints() {
        let cell = |r| match e.role {
            None => "open",
            Some(min) if r >= min => "yes",
            Some(_) => "—",
        };
        use crate::auth::Role::*;
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            e.method,
            e.path,
            cell(Viewer),
            cell(Analyst),
            cell(Admin),
            e.summary
        ));
    }
    out
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flagstream API</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left}code{font-size:13px}</style></head>
<body><h1>Flagstream API</h1><p id="info"></p>
<table><thead><tr><th>Method</th><th>Path</th><th>Role</th><th>Summary</th></tr></thead><tbody id="routes"></tbody></table>
<p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>
<script src="/api/v1/docs.js"></script></body></html>"#;

const SCRIPT: &str = r#"fetch('/api/v1/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('info').textContent = doc.info.description;
  const body = document.getElementById('routes');
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const row = body.insertRow();
      for (const text of [method.toUpperCase(), path, op['x-required-role'] || 'open', op.summary]) {
        row.insertCell().textContent = text;
      }
    }
  }
});
"#;

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'",
            ),
        ],
        PAGE,
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}
