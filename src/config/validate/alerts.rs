//! `[alerts]`: the JSON-lines target, delivery retries, `[alerts.alertmanager]` and
//! `[[alerts.webhook]]` (whose secrets are read from the environment variables they name).

use super::{file, first_given, spanned, table, At, Given, Validator};
use crate::config::formats::{a_value_type, env_var_name, sink_url};
use crate::config::raw::{Field, RawAlertmanager, RawAlerts, RawWebhook, Table};
use crate::config::{AlertmanagerConfig, AlertsConfig, JsonlTarget, Secret, WebhookConfig};
use crate::sinks::LinkTemplate;

/// Larger queues only hold more memory while a sink is down; alerts are few.
const MAX_QUEUE_CAPACITY: i64 = 1_000_000;
const ALERTMANAGER_EXAMPLE: &str = "http://alertmanager:9093";
const WEBHOOK_EXAMPLE: &str = "https://soar.example.com/hooks/kmswatch";

impl Validator<'_, '_> {
    pub(super) fn alerts(&mut self, c: &mut AlertsConfig, t: &Table<RawAlerts>) {
        let (a, _) = table(t);
        if let Some(v) = &a.jsonl {
            self.jsonl(&mut c.jsonl, v);
        }
        int!(
            self,
            "alerts",
            a,
            c,
            jsonl_queue_capacity,
            1..=MAX_QUEUE_CAPACITY
        );
        let r = &mut c.retry;
        self.int(
            &mut r.max_attempts,
            "alerts.max_attempts",
            &a.max_attempts,
            1..=20,
        );
        let base_ok = self.int(
            &mut r.base_ms,
            "alerts.retry_base_ms",
            &a.retry_base_ms,
            1..=3_600_000,
        );
        let max_ok = self.int(
            &mut r.max_ms,
            "alerts.retry_max_ms",
            &a.retry_max_ms,
            1..=3_600_000,
        );
        if base_ok && max_ok && r.max_ms < r.base_ms {
            self.ck.report(
                &first_given(&[&a.retry_max_ms, &a.retry_base_ms]),
                format!(
                    "alerts.retry_max_ms ({}) must be >= alerts.retry_base_ms ({}): raise \
                     retry_max_ms or lower retry_base_ms",
                    r.max_ms, r.base_ms
                ),
            );
        }
        self.alertmanager(&mut c.alertmanager, &a.alertmanager);
        if let Some(list) = &a.webhook {
            for (i, w) in list.get_ref().iter().enumerate() {
                c.webhooks.push(self.webhook(i, w));
            }
        }
    }

    /// `alerts.jsonl`: `"-"` (stdout), a path, or `false`.
    fn jsonl(&mut self, out: &mut Option<JsonlTarget>, v: &toml::Spanned<toml::Value>) {
        let name = "alerts.jsonl";
        match v.get_ref() {
            toml::Value::String(s) if s == "-" => *out = Some(JsonlTarget::Stdout),
            toml::Value::String(s) => {
                let given = Given {
                    value: s.clone(),
                    at: At::Span(v.span()),
                };
                *out = self.path(name, given).map(JsonlTarget::File);
            }
            toml::Value::Boolean(false) => *out = None,
            toml::Value::Boolean(true) => self.ck.report_span(
                v.span(),
                format!("{name} = true names no target: write \"-\" for stdout or a file path"),
            ),
            other => self.ck.report_span(
                v.span(),
                format!(
                    "expected \"-\", a file path or false for {name}, got {}",
                    a_value_type(other)
                ),
            ),
        }
    }

    /// `[alerts.alertmanager]`, enabled by the table or by `KMSWATCH_ALERTMANAGER_URLS`.
    fn alertmanager(&mut self, out: &mut Option<AlertmanagerConfig>, t: &Table<RawAlertmanager>) {
        let name = "alerts.alertmanager.urls";
        let env_urls = self.env_var("KMSWATCH_ALERTMANAGER_URLS");
        if t.is_none() && env_urls.is_none() {
            return;
        }
        let (m, header) = table(t);
        let given: Vec<Given<String>> = match (env_urls, &m.urls) {
            (Some(list), _) => {
                let given: Vec<Given<String>> = list
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(|u| Given {
                        value: u.to_string(),
                        at: list.at.clone(),
                    })
                    .collect();
                if given.is_empty() {
                    let message = format!(
                        "{name} is empty: give a comma-separated list of Alertmanager URLs"
                    );
                    self.ck.report(&list.at, message);
                }
                given
            }
            (None, Some(list)) => {
                if list.get_ref().is_empty() {
                    let message = format!(
                        "{name} is empty: name at least one Alertmanager, like \
                         {ALERTMANAGER_EXAMPLE} (or remove [alerts.alertmanager])"
                    );
                    self.ck.report_span(list.span(), message);
                }
                list.get_ref().iter().map(spanned).collect()
            }
            (None, None) => {
                self.missing(
                    name,
                    &header,
                    &format!(
                        "the base URL of each Alertmanager, like {ALERTMANAGER_EXAMPLE} (or set \
                         KMSWATCH_ALERTMANAGER_URLS)"
                    ),
                );
                Vec::new()
            }
        };
        let mut c = AlertmanagerConfig::new(Vec::new());
        for g in given {
            let at = g.at.clone();
            let Some(url) = self.parse(name, g, |v| sink_url(v, ALERTMANAGER_EXAMPLE)) else {
                continue;
            };
            let url = url.trim_end_matches('/').to_string();
            if c.urls.contains(&url) {
                self.ck
                    .report(&at, format!("duplicate URL {url:?} in {name}: remove it"));
            } else {
                c.urls.push(url);
            }
        }
        let t = "alerts.alertmanager";
        self.int(
            &mut c.resend_interval_secs,
            &format!("{t}.resend_interval_secs"),
            &m.resend_interval_secs,
            1..=3600,
        );
        self.int(
            &mut c.keep_firing_for_secs,
            &format!("{t}.keep_firing_for_secs"),
            &m.keep_firing_for_secs,
            0..=86_400,
        );
        self.int(
            &mut c.timeout_secs,
            &format!("{t}.timeout_secs"),
            &m.timeout_secs,
            1..=300,
        );
        self.int(
            &mut c.queue_capacity,
            &format!("{t}.queue_capacity"),
            &m.queue_capacity,
            1..=MAX_QUEUE_CAPACITY,
        );
        self.int(
            &mut c.max_alerts_per_post,
            &format!("{t}.max_alerts_per_post"),
            &m.max_alerts_per_post,
            1..=10_000,
        );
        if let Some(g) = file(&m.link_template) {
            c.link_template = self.parse(&format!("{t}.link_template"), g, LinkTemplate::parse);
        }
        *out = Some(c);
    }

    /// The `i`th `[[alerts.webhook]]`.
    fn webhook(&mut self, i: usize, w: &toml::Spanned<RawWebhook>) -> WebhookConfig {
        let t = format!("alerts.webhook[{i}]");
        let header = At::Span(w.span());
        let w = w.get_ref();
        let mut c = WebhookConfig::new("");
        let url = format!("{t}.url");
        match file(&w.url) {
            Some(g) => {
                c.url = self
                    .parse(&url, g, |v| sink_url(v, WEBHOOK_EXAMPLE))
                    .unwrap_or_default()
            }
            None if self.ck.is_spoiled(&url) => {}
            None => self.ck.report(
                &header,
                format!(
                    "missing required field \"url\" in [[alerts.webhook]] number {}: where to \
                     POST alerts, like {WEBHOOK_EXAMPLE}",
                    i + 1
                ),
            ),
        }
        c.secret = self.secret(&t, "secret_env", "HMAC-SHA256 key", &w.secret_env);
        c.token = self.secret(&t, "token_env", "bearer token", &w.token_env);
        self.int(
            &mut c.timeout_secs,
            &format!("{t}.timeout_secs"),
            &w.timeout_secs,
            1..=300,
        );
        self.int(
            &mut c.queue_capacity,
            &format!("{t}.queue_capacity"),
            &w.queue_capacity,
            1..=MAX_QUEUE_CAPACITY,
        );
        c
    }

    /// The value of the environment variable that `table.field` names, which must be set and not
    /// empty.
    pub(super) fn secret(
        &mut self,
        t: &str,
        field: &str,
        what: &str,
        f: &Field<String>,
    ) -> Option<Secret> {
        let g = file(f)?;
        let name = format!("{t}.{field}");
        if let Err(why) = env_var_name(&g.value) {
            self.ck
                .report(&g.at, format!("invalid {name} {:?}: {why}", g.value));
            return None;
        }
        let problem = match (self.env)(&g.value) {
            Some(v) if !v.trim().is_empty() => return Some(Secret::new(v)),
            Some(_) => "is empty",
            None => "is not set",
        };
        let message = format!(
            "{name}: the environment variable {} {problem}: put the {what} in it, or remove \
             {field}",
            g.value
        );
        self.ck.report(&g.at, message);
        None
    }
}
