//! The route table: every endpoint with its method, minimum role and summary. It drives the
//! router, the authorization check, the OpenAPI document and the README's role matrix, so
//! they cannot disagree.

mod admin;
mod alerts;
mod audit;
mod auth;
mod backtests;
mod deliveries;
mod destinations;
mod docs;
mod dry_run;
pub(crate) mod filter;
mod flags;
mod health;
mod quality;
mod rules;
mod stats;
mod time;
mod triage;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{Extension, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{authorize, Role};
use crate::state::AppState;
use crate::Error;

/// One endpoint of the API, as documented.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    /// None: open to anyone (health, login, documentation).
    pub role: Option<Role>,
    pub summary: &'static str,
    /// Its query-string parameters.
    pub query: Option<fn() -> Vec<Parameter>>,
    /// The JSON body it reads, if any.
    pub request: Option<Body>,
    /// What a success returns: a JSON body's schema, or another media type.
    pub response: Response200,
}

/// A JSON body's schema, for the OpenAPI document: its name and every schema it needs.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub name: fn() -> std::borrow::Cow<'static, str>,
    pub collect: fn(&mut Vec<(String, RefOr<Schema>)>),
}

impl Body {
    fn of<T: ToSchema>() -> Body {
        Body {
            name: T::name,
            collect: |out| {
                out.push((T::name().into_owned(), T::schema()));
                T::schemas(out);
            },
        }
    }
}

/// The answer to a DELETE: the id of what is gone.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: String,
}

/// A JSON document whose shape the engine defines (a rule, a pack, an event, a verdict),
/// validated by the engine rather than by the schema.
#[derive(Debug, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(transparent)]
pub struct Document(pub serde_json::Value);

/// A successful response.
#[derive(Debug, Clone, Copy)]
pub enum Response200 {
    Json(Body),
    /// Not JSON: this media type, as text.
    Other(&'static str),
}

struct Table {
    router: Router<AppState>,
    endpoints: Vec<Endpoint>,
}

impl Table {
    fn add<H, T>(
        mut self,
        method: &'static str,
        path: &'static str,
        role: Option<Role>,
        summary: &'static str,
        handler: H,
    ) -> Table
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            _ => MethodFilter::DELETE,
        };
        let mut route = on(filter, handler);
        if let Some(role) = role {
            route = route.route_layer(middleware::from_fn(move |req: Request, next: Next| {
                authorize(role, req, next)
            }));
        }
        self.router = self.router.route(path, route);
        self.endpoints.push(Endpoint {
            method,
            path,
            role,
            summary,
            query: None,
            request: None,
            response: Response200::Other("application/json"),
        });
        self
    }

    /// The last endpoint added reads its query string as a `T`.
    fn query<T: IntoParams>(mut self) -> Table {
        if let Some(e) = self.endpoints.last_mut() {
            e.query = Some(|| T::into_params(|| Some(ParameterIn::Query)));
        }
        self
    }

    /// The last endpoint added reads a `T` as its JSON body.
    fn takes<T: ToSchema>(mut self) -> Table {
        if let Some(e) = self.endpoints.last_mut() {
            e.request = Some(Body::of::<T>());
        }
        self
    }

    /// The last endpoint added returns a `T` as JSON.
    fn returns<T: ToSchema>(mut self) -> Table {
        if let Some(e) = self.endpoints.last_mut() {
            e.response = Response200::Json(Body::of::<T>());
        }
        self
    }

    /// The last endpoint added returns a body of this media type.
    fn returns_media(mut self, media: &'static str) -> Table {
        if let Some(e) = self.endpoints.last_mut() {
            e.response = Response200::Other(media);
        }
        self
    }
}

// One line per endpoint reads as the table it is.
#[rustfmt::skip]
fn table() -> Table {
    use Role::{Admin, Analyst, Viewer};
    let open = None;
    Table { router: Router::new(), endpoints: Vec::new() }
    .add("GET", "/health", open, "Liveness", health::health)
    .returns::<health::Health>()
    .add("GET", "/ready", open, "Readiness: database and migrations", health::ready)
    .returns::<health::Readiness>()
    .add("GET", "/api/v1/openapi.json", open, "This API's OpenAPI document", docs::openapi)
    .returns::<Document>()
    .add("GET", "/api/v1/docs", open, "API documentation page", docs::page)
    .returns_media("text/html")
    .add("GET", "/api/v1/docs.js", open, "Script of the documentation page", docs::script)
    .returns_media("text/javascript")
    .add("POST", "/api/v1/auth/login", open, "Log in with username and password; returns a JWT", auth::login)
    .takes::<auth::Login>().returns::<auth::Session>()
    .add("GET", "/api/v1/auth/me", Some(Viewer), "The caller: name, role, credential kind", auth::me)
    .returns::<crate::auth::Principal>()
    .add("GET", "/api/v1/flags", Some(Viewer), "Search flags (filters, cursor pagination)", flags::list)
    .query::<filter::FlagQuery>().returns::<flags::FlagPage>()
    .add("GET", "/api/v1/flags/export", Some(Analyst), "Export flags as NDJSON or CSV (streamed, never content)", flags::export)
    .query::<filter::FlagQuery>().returns_media("application/x-ndjson")
    .add("POST", "/api/v1/flags/bulk", Some(Analyst), "Change the triage status of many flags", triage::bulk)
    .takes::<triage::Bulk>().returns::<triage::BulkResult>()
    .add("GET", "/api/v1/flags/{id}", Some(Viewer), "One flag with its detections", flags::get)
    .returns::<flags::Flag>()
    .add("PATCH", "/api/v1/flags/{id}", Some(Analyst), "Triage a flag: status, assignee, note", triage::update)
    .takes::<triage::Update>().returns::<triage::Triaged>()
    .add("GET", "/api/v1/flags/{id}/history", Some(Viewer), "Triage history of a flag", triage::history)
    .returns::<triage::History>()
    .add("POST", "/api/v1/flags/{id}/reveal", Some(Analyst), "Decrypt a flag's prompt and response (audited, reason required)", triage::reveal)
    .takes::<triage::Reveal>().returns::<triage::Revealed>()
    .add("GET", "/api/v1/rules", Some(Viewer), "Current rules", rules::list)
    .returns::<rules::RuleList>()
    .add("POST", "/api/v1/rules", Some(Admin), "Create a rule (validated by compiling it)", rules::create)
    .takes::<Document>().returns::<Document>()
    .add("GET", "/api/v1/rules/templates", Some(Viewer), "Built-in rule packs", rules::templates)
    .returns::<rules::Templates>()
    .add("POST", "/api/v1/rules/test", Some(Analyst), "Dry-run a draft rule or the active set on sample events", rules::test)
    .takes::<rules::Test>().returns::<rules::TestResult>()
    .add("POST", "/api/v1/rules/backtests", Some(Analyst), "Backtest draft rules on a past range of the topic (queued; a consumer runs it, never touching live flags or offsets)", backtests::create)
    .takes::<backtests::NewBacktest>().returns::<backtests::Backtest>()
    .add("GET", "/api/v1/rules/backtests", Some(Viewer), "Backtests, newest first, without their results", backtests::list)
    .query::<backtests::ListQuery>().returns::<backtests::Backtests>()
    .add("GET", "/api/v1/rules/backtests/{id}", Some(Viewer), "A backtest's progress, and its result once done", backtests::get)
    .returns::<backtests::Backtest>()
    .add("DELETE", "/api/v1/rules/backtests/{id}", Some(Analyst), "Cancel a queued or running backtest; delete a finished one and its result", backtests::cancel)
    .returns::<backtests::Cancelled>()
    .add("GET", "/api/v1/rules/{id}", Some(Viewer), "One rule", rules::get)
    .returns::<Document>()
    .add("PUT", "/api/v1/rules/{id}", Some(Admin), "Replace a rule (new version)", rules::replace)
    .takes::<Document>().returns::<Document>()
    .add("PATCH", "/api/v1/rules/{id}", Some(Admin), "Enable, disable or change the mode of a rule (new version)", rules::patch)
    .takes::<rules::Toggle>().returns::<Document>()
    .add("DELETE", "/api/v1/rules/{id}", Some(Admin), "Delete a rule (kept in its history)", rules::delete)
    .returns::<Deleted>()
    .add("GET", "/api/v1/rules/{id}/versions", Some(Viewer), "Every version of a rule", rules::versions)
    .returns::<rules::RuleVersions>()
    .add("GET", "/api/v1/rules/{id}/diff", Some(Viewer), "Differences between two versions (?from=SEQ&to=SEQ)", rules::diff)
    .query::<rules::DiffQuery>().returns::<rules::RuleDiff>()
    .add("POST", "/api/v1/rules/{id}/restore", Some(Admin), "Restore a version as the newest", rules::restore)
    .takes::<rules::Restore>().returns::<Document>()
    .add("GET", "/api/v1/rules/{id}/quality", Some(Viewer), "Triage verdicts, precision and hits per day of a rule's current version", quality::quality)
    .returns::<quality::Quality>()
    .add("POST", "/api/v1/rules/{id}/promote", Some(Admin), "Switch a shadow rule to enforce if its verdicts pass the gates (409 names what is missing; an admin may force it with a reason)", quality::promote)
    .takes::<quality::Promote>().returns::<quality::Promoted>()
    .add("GET", "/api/v1/stats/summary", Some(Viewer), "Counts, top rules, models, providers and sources, rates", stats::summary)
    .query::<stats::Window>().returns::<stats::Summary>()
    .add("GET", "/api/v1/stats/timeseries", Some(Viewer), "Traffic and flags per time bucket", stats::timeseries)
    .query::<stats::Window>().returns::<stats::Timeseries>()
    .add("GET", "/api/v1/admin/users", Some(Admin), "List users", admin::list_users)
    .returns::<admin::Users>()
    .add("POST", "/api/v1/admin/users", Some(Admin), "Create a user", admin::create_user)
    .takes::<admin::NewUser>().returns::<admin::User>()
    .add("PATCH", "/api/v1/admin/users/{username}", Some(Admin), "Change a user's role, password or disabled flag", admin::update_user)
    .takes::<admin::UserChange>().returns::<admin::User>()
    .add("GET", "/api/v1/admin/api-keys", Some(Admin), "List API keys (prefixes only)", admin::list_keys)
    .returns::<admin::ApiKeys>()
    .add("POST", "/api/v1/admin/api-keys", Some(Admin), "Create an API key; the key is shown once", admin::create_key)
    .takes::<admin::NewApiKey>().returns::<admin::CreatedKey>()
    .add("DELETE", "/api/v1/admin/api-keys/{id}", Some(Admin), "Revoke an API key", admin::revoke_key)
    .returns::<admin::RevokedKey>()
    .add("GET", "/api/v1/alerts/routes", Some(Analyst), "Alert routes in evaluation order", alerts::list)
    .returns::<alerts::Routes>()
    .add("POST", "/api/v1/alerts/routes", Some(Admin), "Create an alert route (validated by compiling it)", alerts::create)
    .takes::<Document>().returns::<crate::store::alerts::RouteRow>()
    .add("GET", "/api/v1/alerts/routes/{id}", Some(Analyst), "One alert route", alerts::get)
    .returns::<crate::store::alerts::RouteRow>()
    .add("PUT", "/api/v1/alerts/routes/{id}", Some(Admin), "Replace an alert route (new version)", alerts::replace)
    .takes::<Document>().returns::<crate::store::alerts::RouteRow>()
    .add("DELETE", "/api/v1/alerts/routes/{id}", Some(Admin), "Delete an alert route (kept in its history)", alerts::delete)
    .returns::<Deleted>()
    .add("GET", "/api/v1/alerts/routes/{id}/versions", Some(Analyst), "Every version of an alert route", alerts::versions)
    .returns::<alerts::RouteVersions>()
    .add("POST", "/api/v1/alerts/routes/{id}/test", Some(Admin), "Dry-run a route on a stored flag: match, group, rendered messages (sends nothing)", dry_run::test)
    .returns::<dry_run::Rendered>()
    .add("GET", "/api/v1/alerts/destinations", Some(Admin), "Alert destinations (display URL only, never the URL or secret)", destinations::list)
    .returns::<destinations::Destinations>()
    .add("POST", "/api/v1/alerts/destinations", Some(Admin), "Create an alert destination (URL and secret sealed)", destinations::create)
    .takes::<destinations::Destination>().returns::<destinations::DestinationRow>()
    .add("PUT", "/api/v1/alerts/destinations/{id}", Some(Admin), "Replace an alert destination (new version; URL required again)", destinations::replace)
    .takes::<destinations::Destination>().returns::<destinations::DestinationRow>()
    .add("DELETE", "/api/v1/alerts/destinations/{id}", Some(Admin), "Delete an alert destination no route uses", destinations::delete)
    .returns::<Deleted>()
    .add("GET", "/api/v1/alerts/deliveries", Some(Analyst), "The alert delivery log (filters, cursor pagination)", deliveries::list)
    .query::<deliveries::DeliveryQuery>().returns::<deliveries::Deliveries>()
    .add("POST", "/api/v1/alerts/deliveries/{id}/resend", Some(Admin), "Queue a failed alert delivery again", deliveries::resend)
    .returns::<crate::store::deliveries::Delivery>()
    .add("GET", "/api/v1/audit", Some(Admin), "The audit log", audit::list)
    .query::<audit::AuditQuery>().returns::<audit::AuditPage>()
}

/// Every endpoint, for the OpenAPI document and the role matrix.
pub fn endpoints() -> Vec<Endpoint> {
    table().endpoints
}

pub use docs::{document as openapi_document, matrix};

/// Limits and browser-facing settings of the router.
#[derive(Debug, Clone, Default)]
pub struct Hardening {
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
}

pub fn router(state: AppState, hardening: &Hardening) -> Result<Router, Error> {
    let metrics = state.metrics.clone();
    let timeout = state.request_timeout;
    let mut router = table()
        .router
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(hardening.max_body_bytes.max(1024)))
        .layer(Extension(state.clone()))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            with_timeout(timeout, req, next)
        }));
    if !hardening.cors_origins.is_empty() {
        router = router.layer(cors(&hardening.cors_origins)?);
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    // The documentation page sets its own policy; everything else is JSON.
    router = router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::limit_client,
        ))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            crate::metrics::track(Arc::clone(&metrics), req, next)
        }))
        .layer(middleware::from_fn(crate::trace::request));
    Ok(router.with_state(state))
}

/// Cuts off a request whose response has not started within `limit`. A streamed export has
/// started once its headers are out, so it is not cut off mid-body.
async fn with_timeout(limit: std::time::Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::Rejected {
            status: StatusCode::REQUEST_TIMEOUT,
            message: format!("the request took longer than {} s", limit.as_secs()),
        }
        .into_response(),
    }
}

fn cors(origins: &[String]) -> Result<CorsLayer, Error> {
    let origins = origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o.trim())
                .map_err(|_| Error::Config(format!("CORS_ORIGINS has an invalid origin `{o}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-api-key"),
        ])
        .max_age(std::time::Duration::from_secs(600)))
}
