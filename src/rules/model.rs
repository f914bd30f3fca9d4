//! The compiled, immutable form of detection rules: what `load` produces and the evaluators consume.

use std::fmt;
use std::path::PathBuf;

use globset::GlobSet;
use serde::Serialize;

use crate::decode::{KmsCall, OpClass, RequestFacts};

/// How urgent an alert of a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: [&'static str; 5] = ["info", "low", "medium", "high", "critical"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Self::Info,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A dimension a rule may group by. The order of `group_by` in the rule is kept in alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Key,
    Principal,
    Service,
    Account,
    Region,
    Operation,
    Error,
}

impl Dim {
    pub const NAMES: [&'static str; 7] = [
        "key",
        "principal",
        "service",
        "account",
        "region",
        "operation",
        "error",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "key" => Self::Key,
            "principal" => Self::Principal,
            "service" => Self::Service,
            "account" => Self::Account,
            "region" => Self::Region,
            "operation" => Self::Operation,
            "error" => Self::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The value of this dimension for a call; `None` where the call has none (no key, no error).
    /// `key` is the resolved key: the engine passes it separately because alias resolution is state.
    pub fn value<'c>(self, call: &'c KmsCall, key: Option<&'c str>) -> Option<&'c str> {
        match self {
            Dim::Key => key,
            Dim::Principal => Some(&call.principal),
            Dim::Service => Some(&call.service),
            Dim::Account => Some(&call.account),
            Dim::Region => Some(&call.region),
            Dim::Operation => Some(&call.operation),
            Dim::Error => call.error_code.as_deref(),
        }
    }
}

/// Which outcomes a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    Ok,
    Failure,
    Any,
}

/// Which operation classes a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassFilter {
    Crypto,
    Management,
    Any,
}

/// A compiled glob list together with the patterns it came from (for messages and docs).
#[derive(Debug, Clone)]
pub struct Globs {
    pub patterns: Vec<String>,
    set: GlobSet,
    /// Every pattern is a plain string, or a plain string and one trailing `*`: compared
    /// directly (the common case, on the hot path), without the glob set's regex.
    simple: Option<Vec<Simple>>,
}

/// A pattern that needs no glob machinery.
#[derive(Debug, Clone)]
enum Simple {
    /// The whole string.
    Exact(String),
    /// A prefix: the pattern was the prefix and `*`, which matches anything after it (`*` is not
    /// kept from matching `/`: globset's default).
    Prefix(String),
}

impl Simple {
    fn of(pattern: &str) -> Option<Simple> {
        let plain = |p: &str| !p.contains(['*', '?', '[', ']', '{', '}', '\\']);
        match pattern.strip_suffix('*') {
            Some(prefix) if plain(prefix) => Some(Simple::Prefix(prefix.to_owned())),
            None if plain(pattern) => Some(Simple::Exact(pattern.to_owned())),
            _ => None,
        }
    }

    fn is_match(&self, s: &str) -> bool {
        match self {
            Simple::Exact(p) => p == s,
            Simple::Prefix(p) => s.starts_with(p.as_str()),
        }
    }
}

impl Globs {
    /// `set` must be compiled from `patterns`.
    pub fn new(patterns: Vec<String>, set: GlobSet) -> Self {
        let simple = patterns.iter().map(|p| Simple::of(p)).collect();
        Globs {
            patterns,
            set,
            simple,
        }
    }

    #[inline]
    pub fn is_match(&self, s: &str) -> bool {
        match &self.simple {
            Some(simple) => simple.iter().any(|p| p.is_match(s)),
            None => self.set.is_match(s),
        }
    }
}

/// An include list (empty: everything) and an exclude list (empty: nothing).
#[derive(Debug, Clone, Default)]
pub struct IncludeExclude {
    pub include: Option<Globs>,
    pub exclude: Option<Globs>,
}

impl IncludeExclude {
    /// Neither list is given: every value matches, and none need be worked out.
    pub fn is_everything(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// `value` is `None` when the call has no such thing (a call with no key): it then matches only
    /// when no include list is given. Inlined: a filter asks four of these per call, most of
    /// them empty.
    #[inline(always)]
    pub fn matches(&self, value: Option<&str>) -> bool {
        match value {
            Some(v) => {
                self.include.as_ref().is_none_or(|g| g.is_match(v))
                    && !self.exclude.as_ref().is_some_and(|g| g.is_match(v))
            }
            None => self.include.is_none(),
        }
    }
}

/// Which calls a rule looks at.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Operation globs (`GenerateDataKey*`); `None`: every operation.
    pub operations: Option<Globs>,
    pub class: ClassFilter,
    pub outcome: OutcomeFilter,
    /// Exact error codes, normalised as `decode` normalises them; `None`: any.
    pub error_codes: Option<Vec<String>>,
    pub keys: IncludeExclude,
    pub principals: IncludeExclude,
    pub services: IncludeExclude,
    pub accounts: IncludeExclude,
    /// `Some(true)`: only calls whose caller account differs from the key's account.
    pub cross_account: Option<bool>,
    /// `Some(want)`: only calls whose request facts (`decode::RequestFacts`) say so; a call
    /// without request facts has `false` for each.
    pub policy_public: Option<bool>,
    pub policy_lockout_bypass: Option<bool>,
    pub grantee_cross_account: Option<bool>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            operations: None,
            class: ClassFilter::Any,
            outcome: OutcomeFilter::Any,
            error_codes: None,
            keys: IncludeExclude::default(),
            principals: IncludeExclude::default(),
            services: IncludeExclude::default(),
            accounts: IncludeExclude::default(),
            cross_account: None,
            policy_public: None,
            policy_lockout_bypass: None,
            grantee_cross_account: None,
        }
    }
}

impl Filter {
    /// Whether the call passes; `key` is the resolved key (see [`Dim::value`]).
    pub fn matches(&self, call: &KmsCall, key: Option<&str>) -> bool {
        let outcome_ok = match self.outcome {
            OutcomeFilter::Any => true,
            OutcomeFilter::Ok => call.error_code.is_none(),
            OutcomeFilter::Failure => call.error_code.is_some(),
        };
        outcome_ok
            && match self.class {
                ClassFilter::Any => true,
                ClassFilter::Crypto => call.class == OpClass::Crypto,
                ClassFilter::Management => call.class == OpClass::Management,
            }
            && self
                .operations
                .as_ref()
                .is_none_or(|g| g.is_match(&call.operation))
            && self.error_codes.as_ref().is_none_or(|codes| {
                call.error_code
                    .as_deref()
                    .is_some_and(|c| codes.iter().any(|x| x == c))
            })
            && self
                .cross_account
                .is_none_or(|want| call.cross_account == want)
            && self.request_matches(call)
            && self.keys.matches(key)
            && self.principals.matches(Some(&call.principal))
            && self.services.matches(Some(&call.service))
            && self.accounts.matches(Some(&call.account))
    }
}

impl Filter {
    fn request_matches(&self, call: &KmsCall) -> bool {
        let facts = call.request.as_deref();
        let fact = |f: fn(&RequestFacts) -> bool| facts.is_some_and(f);
        self.policy_public
            .is_none_or(|want| fact(|r| r.policy_public) == want)
            && self
                .policy_lockout_bypass
                .is_none_or(|want| fact(|r| r.policy_lockout_bypass) == want)
            && self
                .grantee_cross_account
                .is_none_or(|want| fact(|r| r.grantee_cross_account) == want)
    }
}

/// The kind of a rule and its parameters.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Count in a window >= `min_count`.
    Threshold { min_count: u64 },
    /// Count against the trailing baseline of the same group.
    Spike {
        baseline_windows: usize,
        min_baseline_windows: usize,
        min_count: u64,
        min_ratio: f64,
        z: f64,
        stddev_floor: f64,
    },
    /// Numerator ops over denominator ops in a window.
    Ratio {
        numerator: Globs,
        denominator: Globs,
        max_ratio: f64,
        min_count: u64,
    },
    /// A known key with no matching use for `unused_for_secs`.
    Unused {
        unused_for_secs: i64,
        /// Key ARNs from the optional inventory file, known from the start.
        inventory: Vec<String>,
    },
    /// Every matching call.
    Event,
    /// A principal using a key for the first time after the key's learning period.
    NewPrincipal { learning_secs: i64 },
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Spike { .. } => "spike",
            RuleKind::Ratio { .. } => "ratio",
            RuleKind::Unused { .. } => "unused",
            RuleKind::Event => "event",
            RuleKind::NewPrincipal { .. } => "new-principal",
        }
    }
}

/// Where a rule was defined, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOrigin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub severity: Severity,
    pub description: String,
    pub origin: RuleOrigin,
    pub filter: Filter,
    /// Dimensions of a group, in the order the rule gives them.
    pub group_by: Vec<Dim>,
    /// The rule's own window length; `None`: the engine's `window_secs`.
    pub window_secs: Option<i64>,
    /// `threshold` and `spike`: count distinct values of this dimension per group and window
    /// instead of calls (exactly up to a cap, then estimated: `aggregate::Distinct`).
    pub distinct: Option<Dim>,
    pub kind: RuleKind,
}

/// Every rule of a rules directory, in a fixed order (file name, then position in the file).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

#[cfg(test)]
mod tests {
    use globset::{Glob, GlobSetBuilder};

    use super::Globs;

    fn globs(patterns: &[&str]) -> Globs {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            b.add(Glob::new(p).expect("a valid glob"));
        }
        let set = b.build().expect("a valid set");
        Globs::new(patterns.iter().map(|p| p.to_string()).collect(), set)
    }

    #[test]
    fn simple_patterns_match_exactly_what_the_glob_set_matches() {
        let lists: &[&[&str]] = &[
            &["Decrypt"],
            &["Encrypt", "GenerateDataKey*", "ReEncrypt"],
            &["*"],
            &["arn:aws:iam::111111111111:role/*"],
            &["arn:aws:kms:*:key/*"],
            &["Gen?rate*"],
            &["[DE]ncrypt"],
            &[""],
        ];
        let inputs = [
            "",
            "Decrypt",
            "decrypt",
            "Decrypt ",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKey\nx",
            "GenerateDataKey/x",
            "ReEncrypt",
            "Encrypt",
            "Gen!rateDataKey",
            "arn:aws:iam::111111111111:role/ops",
            "arn:aws:iam::111111111111:role/a/b\nc",
            "arn:aws:iam::111111111111:role",
            "arn:aws:kms:eu-west-1:1:key/k",
        ];
        let mut simple = 0;
        for list in lists {
            let g = globs(list);
            simple += usize::from(g.simple.is_some());
            for s in inputs {
                assert_eq!(g.is_match(s), g.set.is_match(s), "{list:?} on {s:?}");
            }
        }
        assert_eq!(
            simple, 5,
            "the lists with plain patterns and trailing stars"
        );
    }
}
