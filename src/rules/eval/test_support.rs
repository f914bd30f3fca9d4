//! Builders shared by the evaluators' unit tests: calls, rules and an engine harness.

use globset::{Glob, GlobSetBuilder};

use crate::alerts::{Alert, AlertState};
use crate::decode::{KeyRef, KmsCall, OpClass, ServiceSource};
use crate::engine::{Engine, EngineConfig};
use crate::rules::model::{Dim, Filter, Globs, Rule, RuleKind, RuleOrigin, RuleSet, Severity};
use crate::rules::EvalLimits;

pub fn globs(patterns: &[&str]) -> Globs {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).unwrap());
    }
    Globs::new(
        patterns.iter().map(|p| p.to_string()).collect(),
        b.build().unwrap(),
    )
}

pub fn rule(id: &str, kind: RuleKind, group_by: &[&str]) -> Rule {
    Rule {
        id: id.into(),
        severity: Severity::High,
        description: format!("test rule {id}"),
        origin: RuleOrigin {
            file: "test.toml".into(),
            line: 1,
        },
        filter: Filter::default(),
        group_by: group_by.iter().map(|d| Dim::parse(d).unwrap()).collect(),
        window_secs: None,
        distinct: None,
        kind,
    }
}

/// A successful call of `operation` on `key` (none when empty) by `principal`.
pub fn op(operation: &str, key: &str, principal: &str) -> KmsCall {
    KmsCall {
        event_id: "unset".into(),
        dedupe_id: 0,
        time: 0,
        operation: operation.into(),
        class: crate::decode::op_class(operation),
        key: (!key.is_empty()).then(|| KeyRef::Key(key.into())),
        principal: principal.into(),
        caller_account: Some("111111111111".into()),
        account: "111111111111".into(),
        region: "us-east-1".into(),
        service: "direct".into(),
        service_source: ServiceSource::Direct,
        error_code: None,
        cross_account: false,
        effect: None,
        request: None,
    }
}

pub fn decrypt(key: &str, principal: &str) -> KmsCall {
    let c = op("Decrypt", key, principal);
    debug_assert_eq!(c.class, OpClass::Crypto);
    c
}

/// An engine fed one call per object, with unique event ids.
pub struct Harness {
    pub engine: Engine,
    alerts: Vec<Alert>,
    next_id: u64,
}

impl Harness {
    pub fn new(rules: Vec<Rule>) -> Self {
        Self::with_limits(
            rules,
            EvalLimits::default().max_groups_per_rule,
            EvalLimits::default().max_principals_per_key,
        )
    }

    pub fn with_limits(
        rules: Vec<Rule>,
        max_groups_per_rule: usize,
        max_principals_per_key: usize,
    ) -> Self {
        let config = EngineConfig {
            limits: EvalLimits {
                max_groups_per_rule,
                max_principals_per_key,
            },
            ..EngineConfig::default()
        };
        Harness {
            engine: Engine::new(config, RuleSet { rules }),
            alerts: Vec::new(),
            next_id: 0,
        }
    }

    pub fn call(&mut self, time: i64, mut call: KmsCall) {
        self.next_id += 1;
        call.time = time;
        call.event_id = format!("ev-{}", self.next_id).into();
        call.dedupe_id = self.next_id;
        self.engine.ingest(call, &mut self.alerts);
        self.engine.end_object(&mut self.alerts);
    }

    /// `n` decrypts on `key` by principal `p` at `time`.
    pub fn burst(&mut self, time: i64, n: u64, key: &str) {
        for _ in 0..n {
            self.call(time, decrypt(key, "p"));
        }
    }

    /// Alerts so far, without finishing.
    pub fn take(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.alerts)
    }

    pub fn end(&mut self) -> Vec<Alert> {
        self.engine.finish(&mut self.alerts);
        std::mem::take(&mut self.alerts)
    }
}

/// (rule, state, key, window_start, value) of each alert.
pub fn brief(alerts: &[Alert]) -> Vec<(&str, AlertState, &str, i64, f64)> {
    alerts
        .iter()
        .map(|a| {
            (
                a.rule.as_str(),
                a.state,
                a.group.get(Dim::Key).unwrap_or(""),
                a.window_start,
                a.value,
            )
        })
        .collect()
}
