//! The bodies sent to each kind of destination, built from one [`Message`]. Bounded: at
//! most [`MAX_FLAGS_PER_MESSAGE`] flags are listed, the count says how many the group held.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::alert::{AlertFlag, Route};
use crate::Severity;

pub const MAX_FLAGS_PER_MESSAGE: usize = 20;

/// One notification: a group's flags for one route and destination.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Unique per delivery: the `Idempotency-Key` and the payload's `delivery`.
    pub key: &'a str,
    pub route: &'a Route,
    pub group_key: &'a str,
    /// The group's flags, oldest first (possibly more than are listed).
    pub flags: &'a [AlertFlag],
    /// Flags of this group held back by `repeat_interval` since the last notification.
    pub suppressed: i64,
    /// Base of the API links (`https://flagstream.example.com`), if configured.
    pub api_base_url: Option<&'a str>,
}

impl Message<'_> {
    fn severity(&self) -> Severity {
        self.flags
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Low)
    }

    fn rules(&self) -> Vec<&str> {
        let mut rules: Vec<&str> = self
            .flags
            .iter()
            .flat_map(|f| self.route.rule_ids(f))
            .collect();
        rules.sort_unstable();
        rules.dedup();
        rules
    }

    fn url(&self, flag: &AlertFlag) -> Option<String> {
        self.api_base_url
            .map(|base| format!("{}/api/v1/flags/{}", base.trim_end_matches('/'), flag.id))
    }

    fn listed(&self) -> &[AlertFlag] {
        &self.flags[..self.flags.len().min(MAX_FLAGS_PER_MESSAGE)]
    }

    /// The generic webhook's JSON.
    pub fn webhook(&self) -> Value {
        let flags: Vec<Value> = self
            .listed()
            .iter()
            .map(|f| {
                let considered = self.route.rule_ids(f);
                let detections = f.detections.iter().filter(|d| considered.contains(d.rule_id.as_str()));
                let mut rules: Vec<Value> = Vec::new();
                for d in detections.clone() {
                    let rule = json!({ "id": d.rule_id, "version": d.rule_version });
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
                json!({
                    "id": f.id,
                    "url": self.url(f),
                    "event_time": rfc3339(f.event_time),
                    "score": f.score,
                    "severity": f.severity.as_str(),
                    "categories": f.categories,
                    "model": f.model,
                    "provider": f.provider,
                    "src_ip": f.src_ip.to_string(),
                    "user": f.user,
                    "app": f.app,
                    "rules": rules,
                    "detections": detections
                        .map(|d| json!({ "rule": d.rule_id, "field": d.field, "excerpt": d.excerpt }))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "version": 1,
            "delivery": self.key,
            "route": self.route.id(),
            "group_key": self.group_key,
            "severity": self.severity().as_str(),
            "flag_count": self.flags.len(),
            "suppressed_since_last": self.suppressed,
            "flags": flags,
        })
    }

    /// A Slack Block Kit message.
    pub fn slack(&self) -> Value {
        let Some(first) = self.flags.first() else {
            return json!({ "text": "Flagstream: empty alert" });
        };
        let rules = self.rules().join(", ");
        let title = format!(
            "Flagstream: {} flag{} · {}",
            self.flags.len(),
            plural(self.flags.len()),
            rules
        );
        let mut fields = vec![
            field("Severity", self.severity().as_str()),
            field("Score", &first.score.to_string()),
            field("Model", &format!("{} / {}", first.provider, first.model)),
            field("Source", &first.src_ip.to_string()),
        ];
        if let Some(user) = &first.user {
            fields.push(field("User", user));
        }
        if let Some(app) = &first.app {
            fields.push(field("App", app));
        }
        let excerpts: Vec<String> = first
            .detections
            .iter()
            .filter(|d| self.route.rule_ids(first).contains(d.rule_id.as_str()))
            .take(5)
            .map(|d| {
                format!(
                    "• `{}` in {}: {}",
                    escape(&d.rule_id),
                    escape(&d.field),
                    escape(&d.excerpt)
                )
            })
            .collect();
        let mut context = match self.url(first) {
            Some(url) => format!("<{url}|Flag {}>", first.id),
            None => format!("Flag {}", first.id),
        };
        context.push_str(&format!(" · route `{}`", escape(self.route.id())));
        if self.flags.len() > 1 {
            context.push_str(&format!(" · {} more in this group", self.flags.len() - 1));
        }
        if self.suppressed > 0 {
            context.push_str(&format!(
                " · {} suppressed since the last alert",
                self.suppressed
            ));
        }
        let mut message = json!({
            "text": title,
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": truncate(&title, 150) } },
                { "type": "section", "fields": fields },
                { "type": "section", "text": { "type": "mrkdwn", "text": truncate(&excerpts.join("\n"), 2900) } },
                { "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] },
            ],
        });
        if let Some(channel) = &self.route.definition.slack_channel {
            message["channel"] = channel.as_str().into();
        }
        message
    }

    /// Alertmanager's `POST /api/v2/alerts` body: one alert per notification, labelled so
    /// Alertmanager's own routing (to PagerDuty, Opsgenie, …) can select on it.
    pub fn alertmanager(&self) -> Value {
        let Some(first) = self.flags.first() else {
            return json!([]);
        };
        let flag_ids: Vec<String> = self.listed().iter().map(|f| f.id.to_string()).collect();
        let excerpts: Vec<String> = first
            .detections
            .iter()
            .filter(|d| self.route.rule_ids(first).contains(d.rule_id.as_str()))
            .take(5)
            .map(|d| format!("{} in {}: {}", d.rule_id, d.field, d.excerpt))
            .collect();
        let mut alert = json!({
            "labels": {
                "alertname": "FlagstreamFlag",
                "severity": self.severity().as_str(),
                "route": self.route.id(),
                "rule": self.rules().join(","),
                "provider": first.provider,
                "model": first.model,
                "src_ip": first.src_ip.to_string(),
                "flagstream_group": self.group_key,
            },
            "annotations": {
                "summary": format!("{} flag{} on {}", self.flags.len(), plural(self.flags.len()), self.rules().join(", ")),
                "description": excerpts.join("\n"),
                "score": first.score.to_string(),
                "flag_ids": flag_ids.join(","),
                "suppressed": self.suppressed.to_string(),
                "delivery": self.key,
            },
            "startsAt": rfc3339(first.event_time),
        });
        if let Some(url) = self.url(first) {
            alert["generatorURL"] = url.clone().into();
            alert["annotations"]["flag_url"] = url.into();
        }
        if let Some(user) = &first.user {
            alert["labels"]["user"] = user.as_str().into();
        }
        if let Some(app) = &first.app {
            alert["labels"]["app"] = app.as_str().into();
        }
        json!([alert])
    }
}

fn field(name: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{name}*\n{}", escape(value)) })
}

/// Slack's mrkdwn control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertDetection, RouteDefinition};

    fn flag(id: i64, shadow_rule: bool) -> AlertFlag {
        let mut detections = vec![AlertDetection {
            rule_id: "secret.aws".into(),
            rule_version: 3,
            field: "prompt".into(),
            excerpt: "my key is AK****************".into(),
            shadow: false,
        }];
        if shadow_rule {
            detections.push(AlertDetection {
                rule_id: "trial.rule".into(),
                rule_version: 1,
                field: "prompt".into(),
                excerpt: "tr***".into(),
                shadow: true,
            });
        }
        AlertFlag {
            id,
            event_time: OffsetDateTime::UNIX_EPOCH,
            score: 90,
            severity: Severity::Critical,
            categories: vec!["secrets".into()],
            model: "gpt-4o".into(),
            provider: "openai".into(),
            src_ip: "10.1.2.3".parse().unwrap(),
            user: Some("alice".into()),
            app: None,
            detections,
        }
    }

    fn route(json: Value) -> Route {
        Route::compile(serde_json::from_value::<RouteDefinition>(json).unwrap()).unwrap()
    }

    #[test]
    fn every_kind_lists_the_evidence_but_never_shadow_hits_unless_asked() {
        let r = route(json!({"id": "r", "destinations": ["d"], "group_by": ["rule", "src_ip"]}));
        let flags = [flag(7, true), flag(8, false)];
        let key = r.group_key(&flags[0]);
        assert_eq!(key, "rule=secret.aws;src_ip=10.1.2.3");
        let m = Message {
            key: "k1",
            route: &r,
            group_key: &key,
            flags: &flags,
            suppressed: 4,
            api_base_url: Some("https://fs.example.com/"),
        };
        let webhook = m.webhook();
        assert_eq!(webhook["flag_count"], 2);
        assert_eq!(webhook["suppressed_since_last"], 4);
        assert_eq!(
            webhook["flags"][0]["url"],
            "https://fs.example.com/api/v1/flags/7"
        );
        assert_eq!(
            webhook["flags"][0]["rules"],
            json!([{"id": "secret.aws", "version": 3}])
        );
        let text = webhook.to_string() + &m.slack().to_string() + &m.alertmanager().to_string();
        assert!(!text.contains("trial.rule"), "{text}");
        let am = m.alertmanager();
        assert_eq!(am[0]["labels"]["alertname"], "FlagstreamFlag");
        assert_eq!(am[0]["labels"]["severity"], "critical");
        assert_eq!(
            am[0]["generatorURL"],
            "https://fs.example.com/api/v1/flags/7"
        );
        let slack = m.slack();
        assert!(slack["blocks"][3]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("4 suppressed"));

        let with_shadow =
            route(json!({"id": "r", "destinations": ["d"], "match": {"include_shadow": true}}));
        let m = Message {
            route: &with_shadow,
            ..m
        };
        assert!(m.webhook().to_string().contains("trial.rule"));
    }

    #[test]
    fn routes_match_in_order_and_continue_only_when_asked() {
        let routes = [
            route(
                json!({"id": "low", "destinations": ["d"], "match": {"min_severity": "critical", "rules": ["pii.*"]}}),
            ),
            route(
                json!({"id": "keys", "destinations": ["d"], "match": {"rules": ["secret.*"], "cidrs": ["10.0.0.0/8"]}, "continue": true}),
            ),
            route(json!({"id": "all", "destinations": ["d"]})),
            route(json!({"id": "never", "destinations": ["d"]})),
        ];
        let chosen: Vec<&str> = crate::alert::route(&routes, &flag(1, false))
            .iter()
            .map(|r| r.id())
            .collect();
        assert_eq!(chosen, ["keys", "all"]);
        let elsewhere = AlertFlag {
            src_ip: "192.168.1.1".parse().unwrap(),
            ..flag(1, false)
        };
        let chosen: Vec<&str> = crate::alert::route(&routes, &elsewhere)
            .iter()
            .map(|r| r.id())
            .collect();
        assert_eq!(chosen, ["all"]);
        let only_shadow = AlertFlag {
            detections: flag(1, true).detections[1..].to_vec(),
            ..flag(1, false)
        };
        assert!(crate::alert::route(&routes, &only_shadow).is_empty());
    }

    #[test]
    fn bad_routes_are_refused_naming_the_field() {
        for (json, field) in [
            (json!({"id": "Bad Id", "destinations": ["d"]}), "route id"),
            (json!({"id": "r", "destinations": []}), "destinations"),
            (
                json!({"id": "r", "destinations": ["d"], "group_by": ["prompt"]}),
                "group_by",
            ),
            (
                json!({"id": "r", "destinations": ["d"], "match": {"cidrs": ["10.0.0.0/33"]}}),
                "match.cidrs",
            ),
            (
                json!({"id": "r", "destinations": ["d"], "repeat_interval_secs": 99999999}),
                "repeat_interval_secs",
            ),
        ] {
            let definition: RouteDefinition = serde_json::from_value(json).unwrap();
            let error = Route::compile(definition).unwrap_err().to_string();
            assert!(error.contains(field), "{error}");
        }
        assert!(serde_json::from_value::<RouteDefinition>(
            json!({"id": "r", "destinations": ["d"], "typo": 1})
        )
        .is_err());
    }
}
