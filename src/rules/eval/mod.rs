//! Rule evaluation: per-rule state fed with calls and closed windows, producing alerts.
//!
//! Pure: no I/O, no clock. The engine decides when windows close; each evaluator only reacts.

mod dispatch;
mod event;
mod groups;
mod unused;
mod windowed;

use std::fmt;

pub use dispatch::{Dispatch, MAX_DISPATCH_OPERATIONS};

use serde::{Deserialize, Serialize};

use crate::aggregate::KeyCatalog;
use crate::alerts::{Alert, AlertState, Baseline, Evidence, Group, ALERT_SCHEMA, MAX_EVIDENCE_IDS};
use crate::decode::KmsCall;

use super::model::{Dim, Rule, RuleKind};

/// Memory bounds for rule state, all attacker-influenced (keys and principals come from logs).
#[derive(Debug, Clone, Copy)]
pub struct EvalLimits {
    /// Groups one rule tracks at once (open window cells, baselines, firing alerts each).
    pub max_groups_per_rule: usize,
    /// Principals remembered per key by `new-principal` rules.
    pub max_principals_per_key: usize,
}

impl Default for EvalLimits {
    fn default() -> Self {
        EvalLimits {
            max_groups_per_rule: 100_000,
            max_principals_per_key: 10_000,
        }
    }
}

/// What a rule emitted, and what it could not take in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalCounters {
    /// Matching calls whose window had already closed.
    pub late: u64,
    /// Matching calls or groups dropped because a limit was reached.
    pub overflow: u64,
    /// Of `overflow`, the calls of `new-principal` rules whose principal did not fit
    /// `max_principals_per_key` (the rest did not fit `max_groups_per_rule`).
    #[serde(default)]
    pub principals_overflow: u64,
    /// Alerts emitted, by state.
    pub alerts_firing: u64,
    pub alerts_resolved: u64,
}

impl EvalCounters {
    fn tally(&mut self, alerts: &[Alert]) {
        for a in alerts {
            match a.state {
                AlertState::Firing => self.alerts_firing = self.alerts_firing.saturating_add(1),
                AlertState::Resolved => {
                    self.alerts_resolved = self.alerts_resolved.saturating_add(1)
                }
            }
        }
    }
}

/// One rule with its running state.
#[derive(Debug)]
pub struct RuleEval {
    pub rule: Rule,
    pub counters: EvalCounters,
    /// [`Rule::fingerprint`] under the engine's default window: saved state applies only to a
    /// rule with the same fingerprint.
    fingerprint: String,
    state: State,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Windowed(windowed::WindowedState),
    Event(event::EventState),
    Unused(unused::UnusedState),
}

impl State {
    fn firing(&self) -> usize {
        match self {
            State::Windowed(s) => s.firing(),
            State::Event(s) => s.firing(),
            State::Unused(s) => s.firing(),
        }
    }
}

/// One rule's running state as saved in a state file, with what identifies the rule it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedRule {
    /// The rule id.
    pub rule: String,
    /// The rule kind, for people reading the file.
    pub kind: String,
    /// [`Rule::fingerprint`] of the definition the state was built under.
    pub fingerprint: String,
    pub counters: EvalCounters,
    state: State,
}

impl SavedRule {
    /// Alerts firing in this state.
    pub fn firing(&self) -> usize {
        self.state.firing()
    }

    /// Limits of `limits` this state holds more entries than, as (limit, entries held).
    pub(crate) fn over_limits(&self, limits: &EvalLimits) -> Vec<(&'static str, usize)> {
        match &self.state {
            State::Windowed(s) => s.over_limits(limits),
            State::Event(s) => s.over_limits(limits),
            State::Unused(_) => Vec::new(),
        }
    }
}

impl RuleEval {
    /// `window_secs` is the engine's default window, used unless the rule sets its own.
    pub fn new(rule: Rule, window_secs: i64, limits: EvalLimits) -> Self {
        let len = rule.window_secs.unwrap_or(window_secs);
        let state = match &rule.kind {
            RuleKind::Threshold { .. } | RuleKind::Spike { .. } | RuleKind::Ratio { .. } => {
                State::Windowed(windowed::WindowedState::new(len, limits))
            }
            RuleKind::Event | RuleKind::NewPrincipal { .. } => {
                State::Event(event::EventState::new(len, limits))
            }
            RuleKind::Unused { .. } => State::Unused(unused::UnusedState::new(len)),
        };
        RuleEval {
            fingerprint: rule.fingerprint(window_secs),
            rule,
            counters: EvalCounters::default(),
            state,
        }
    }

    /// See [`Rule::fingerprint`].
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A copy of the running state, for a state file.
    pub fn save(&self) -> SavedRule {
        SavedRule {
            rule: self.rule.id.clone(),
            kind: self.rule.kind.name().to_owned(),
            fingerprint: self.fingerprint.clone(),
            counters: self.counters,
            state: match &self.state {
                State::Windowed(s) => State::Windowed(s.to_saved()),
                other => other.clone(),
            },
        }
    }

    /// The running state itself, lent for a state file: [`RuleEval::take_back`] must return it
    /// before the rule is used again. Saves what [`RuleEval::save`] copies (a windowed rule first
    /// forgets, in place, the groups nothing holds).
    pub(crate) fn lend(&mut self) -> SavedRule {
        if let State::Windowed(s) = &mut self.state {
            s.forget_unused_groups(true);
        }
        let placeholder = State::Unused(unused::UnusedState::new(1));
        SavedRule {
            rule: self.rule.id.clone(),
            kind: self.rule.kind.name().to_owned(),
            fingerprint: self.fingerprint.clone(),
            counters: self.counters,
            state: std::mem::replace(&mut self.state, placeholder),
        }
    }

    /// Takes back the state [`RuleEval::lend`] lent.
    pub(crate) fn take_back(&mut self, saved: SavedRule) {
        self.state = saved.state;
    }

    /// Continues from `saved`, which the caller matched to this rule by id and fingerprint.
    /// Configuration (window length, limits) stays this rule's. Fails when the saved state is not
    /// of this rule's kind (possible only in an edited file).
    pub(crate) fn resume(&mut self, saved: SavedRule) -> Result<(), String> {
        let mut state = saved.state;
        let times = match &state {
            State::Windowed(s) => s.check_times(),
            State::Event(s) => s.check_times(),
            State::Unused(s) => s.check_times(),
        };
        times.map_err(|problem| format!("rule \"{}\": {problem}", self.rule.id))?;
        match (&mut state, &self.state) {
            (State::Windowed(s), State::Windowed(fresh)) => s.adopt_config(fresh),
            (State::Event(s), State::Event(fresh)) => s.adopt_config(fresh),
            (State::Unused(s), State::Unused(fresh)) => s.adopt_config(fresh),
            _ => {
                return Err(format!(
                    "rule \"{}\" has saved state of another kind than {}",
                    self.rule.id,
                    self.rule.kind.name()
                ))
            }
        }
        self.state = state;
        self.counters = saved.counters;
        Ok(())
    }

    /// A fresh rule in a restored engine whose latest event time is `t`: rules that judge keys by
    /// their history (`unused`, `new-principal`) count it from `t`, since they did not watch
    /// before.
    pub(crate) fn watch_from(&mut self, t: i64) {
        match &mut self.state {
            State::Windowed(_) => {}
            State::Event(s) => s.watch_from(t),
            State::Unused(s) => s.watch_from(t),
        }
    }

    /// Feeds one (deduplicated) call; `key` is its resolved key and `watermark` the engine's (a
    /// call whose window ended by then is late). Event-like rules may alert at once.
    pub fn on_call(
        &mut self,
        call: &KmsCall,
        key: Option<&str>,
        catalog: &KeyCatalog,
        watermark: Option<i64>,
        out: &mut Vec<Alert>,
    ) {
        let r = &self.rule;
        let c = &mut self.counters;
        let before = out.len();
        match &mut self.state {
            State::Windowed(s) => s.on_call(r, c, call, key, watermark),
            State::Event(s) => s.on_call(r, c, call, key, catalog, out),
            State::Unused(s) => s.on_call(r, call, key, catalog, out),
        }
        c.tally(&out[before..]);
    }

    /// End time of the next window (or check) this rule would close, if any.
    pub fn next_close(&self) -> Option<i64> {
        match &self.state {
            State::Windowed(s) => s.next_close(),
            State::Event(s) => s.next_close(),
            State::Unused(s) => s.next_close(),
        }
    }

    /// Closes this rule's next window if it ends by `limit`, emitting alerts; may instead skip
    /// windows in which nothing can change. Returns whether it closed one.
    pub fn close_next(&mut self, limit: i64, catalog: &KeyCatalog, out: &mut Vec<Alert>) -> bool {
        let r = &self.rule;
        let before = out.len();
        let closed = match &mut self.state {
            State::Windowed(s) => s.close_next(r, limit, out),
            State::Event(s) => s.close_next(r, limit, out),
            State::Unused(s) => s.close_next(r, limit, catalog, out),
        };
        self.counters.tally(&out[before..]);
        closed
    }

    /// Whether the rule is `unused` (checked against the watermark itself, not whole windows).
    pub fn is_unused(&self) -> bool {
        matches!(self.state, State::Unused(_))
    }

    /// Alerts currently firing for this rule.
    pub fn firing(&self) -> usize {
        self.state.firing()
    }
}

/// Separates dimension values inside a group key; CloudTrail values never contain it.
const SEP: char = '\u{1f}';

/// Writes the group key of `call` for `dims` into `buf` (no allocation once `buf` is warm).
fn group_key(dims: &[Dim], call: &KmsCall, key: Option<&str>, buf: &mut String) {
    buf.clear();
    for (i, d) in dims.iter().enumerate() {
        if i > 0 {
            buf.push(SEP);
        }
        buf.push_str(d.value(call, key).unwrap_or(""));
    }
}

/// The group object of a group key built by [`group_key`].
fn group_of(dims: &[Dim], key: &str) -> Group {
    Group(
        dims.iter()
            .zip(key.split(SEP))
            .map(|(d, v)| (*d, (!v.is_empty()).then(|| v.to_owned())))
            .collect(),
    )
}

/// Event ids kept as evidence, at most [`MAX_EVIDENCE_IDS`]. CloudTrail event ids are lowercase
/// UUIDs: such an id is kept as a tag byte and its 16 bytes; any other id as a tag byte, its
/// length (2 bytes) and its bytes, all in one allocation. A window cell of a busy group holds ten,
/// 17 bytes each instead of the 36 of the text (and the 64 of heap a `Box<str>` each once cost).
/// A single UUID, what most cells of a rule over many groups hold, is kept inline, without an
/// allocation. Saved as the list of ids in readable formats (a JSON dump), as the entries' bytes
/// in binary ones (one inline UUID as its 17-byte entry, so the state format is the same).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum EvidenceIds {
    #[default]
    None,
    /// Exactly one id, a canonical UUID: its bytes.
    Uuid([u8; 16]),
    /// The entries of any other list (never of a lone UUID, so that equal lists compare equal).
    Entries(Box<[u8]>),
}

/// Tags of [`EvidenceIds`] entries.
const UUID_TAG: u8 = 0;
const TEXT_TAG: u8 = 1;

/// One kept id, in either form.
pub(super) enum EventId<'a> {
    Uuid(uuid::Uuid),
    Text(&'a str),
}

impl fmt::Display for EventId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventId::Uuid(u) => fmt::Display::fmt(&u.hyphenated(), f),
            EventId::Text(s) => f.write_str(s),
        }
    }
}

/// `id` as a UUID when it is one written exactly as [`uuid::fmt::Hyphenated`] writes it
/// (lowercase, hyphenated), so the text comes back byte for byte.
fn canonical_uuid(id: &str) -> Option<uuid::Uuid> {
    if id.len() != uuid::fmt::Hyphenated::LENGTH {
        return None;
    }
    let u = uuid::Uuid::try_parse(id).ok()?;
    let mut buf = uuid::Uuid::encode_buffer();
    (u.hyphenated().encode_lower(&mut buf) == id).then_some(u)
}

impl EvidenceIds {
    pub fn one(id: &str) -> Self {
        let mut ids = EvidenceIds::default();
        ids.keep(id);
        ids
    }

    /// Keeps `id` unless [`MAX_EVIDENCE_IDS`] are kept (or it is longer than 65,535 bytes, which
    /// no CloudTrail event id is).
    pub fn keep(&mut self, id: &str) {
        if self.len() >= MAX_EVIDENCE_IDS {
            return;
        }
        let uuid = canonical_uuid(id);
        if let (EvidenceIds::None, Some(u)) = (&*self, uuid) {
            *self = EvidenceIds::Uuid(u.into_bytes());
            return;
        }
        let room = match (uuid, u16::try_from(id.len())) {
            (Some(_), _) => 1 + 16,
            (None, Ok(_)) => 3 + id.len(),
            (None, Err(_)) => return,
        };
        // Exactly the entries' room, in a boxed slice (16 bytes in the cell, not a Vec's 24): at
        // most ten entries, so growing by doubling would save few copies and leave a cell of ten
        // UUIDs with 272 bytes for 170.
        let mut buf = match std::mem::take(self) {
            EvidenceIds::None => Vec::with_capacity(room),
            EvidenceIds::Uuid(first) => {
                let mut buf = Vec::with_capacity(1 + 16 + room);
                buf.push(UUID_TAG);
                buf.extend_from_slice(&first);
                buf
            }
            EvidenceIds::Entries(buf) => {
                let mut buf = buf.into_vec();
                buf.reserve_exact(room);
                buf
            }
        };
        match uuid {
            Some(u) => {
                buf.push(UUID_TAG);
                buf.extend_from_slice(u.as_bytes());
            }
            None => {
                buf.push(TEXT_TAG);
                buf.extend_from_slice(&(id.len() as u16).to_le_bytes());
                buf.extend_from_slice(id.as_bytes());
            }
        }
        *self = EvidenceIds::from_entries(buf);
    }

    /// The ids whose entries `buf` holds (checked by [`EvidenceIds::check`], or made by `keep`).
    fn from_entries(buf: Vec<u8>) -> Self {
        match buf.split_first() {
            None => EvidenceIds::None,
            Some((&UUID_TAG, bytes)) if bytes.len() == 16 => {
                EvidenceIds::Uuid(bytes.try_into().expect("sixteen bytes"))
            }
            Some(_) => EvidenceIds::Entries(buf.into_boxed_slice()),
        }
    }

    /// The entries' bytes, as a binary format saves them.
    fn entries(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            EvidenceIds::None => (&[][..]).into(),
            EvidenceIds::Uuid(bytes) => [&[UUID_TAG][..], bytes].concat().into(),
            EvidenceIds::Entries(buf) => (&buf[..]).into(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = EventId<'_>> {
        let (first, mut rest) = match self {
            EvidenceIds::None => (None, &[][..]),
            EvidenceIds::Uuid(bytes) => {
                (Some(EventId::Uuid(uuid::Uuid::from_bytes(*bytes))), &[][..])
            }
            EvidenceIds::Entries(buf) => (None, &buf[..]),
        };
        first.into_iter().chain(std::iter::from_fn(move || {
            let (id, tail) = Self::entry(rest).ok()??;
            rest = tail;
            Some(id)
        }))
    }

    /// The entry at the start of `buf` and what follows it; `None` at the end, an error for bytes
    /// that are no entry (only possible in a state file).
    fn entry(buf: &[u8]) -> Result<Option<(EventId<'_>, &[u8])>, &'static str> {
        let Some((&tag, rest)) = buf.split_first() else {
            return Ok(None);
        };
        match tag {
            UUID_TAG => {
                let (bytes, tail) = rest
                    .split_first_chunk::<16>()
                    .ok_or("an evidence id is cut short")?;
                Ok(Some((EventId::Uuid(uuid::Uuid::from_bytes(*bytes)), tail)))
            }
            TEXT_TAG => {
                let (len, tail) = rest
                    .split_first_chunk::<2>()
                    .ok_or("an evidence id is cut short")?;
                let n = usize::from(u16::from_le_bytes(*len));
                if tail.len() < n {
                    return Err("an evidence id is cut short");
                }
                let (text, tail) = tail.split_at(n);
                let text = std::str::from_utf8(text).map_err(|_| "an evidence id is not UTF-8")?;
                Ok(Some((EventId::Text(text), tail)))
            }
            _ => Err("an evidence id has an unknown tag"),
        }
    }

    /// How many ids are kept: a walk over the entries' tags and lengths (a full cell is asked
    /// on each of its calls), equal to `iter().count()` for every buffer `keep` or `check` lets
    /// through.
    pub fn len(&self) -> usize {
        let buf = match self {
            EvidenceIds::None => return 0,
            EvidenceIds::Uuid(_) => return 1,
            EvidenceIds::Entries(buf) => buf,
        };
        let (mut at, mut n) = (0, 0);
        while let Some(&tag) = buf.get(at) {
            at += match tag {
                UUID_TAG => 1 + 16,
                _ => match buf.get(at + 1..at + 3) {
                    Some(&[lo, hi]) => 3 + usize::from(u16::from_le_bytes([lo, hi])),
                    _ => buf.len(),
                },
            };
            n += 1;
        }
        n
    }

    /// Whether `buf` is a buffer [`EvidenceIds::keep`] could have made (from a state file).
    fn check(buf: &[u8]) -> Result<(), String> {
        let mut rest = buf;
        let mut n = 0;
        while let Some((_, tail)) = Self::entry(rest)? {
            n += 1;
            rest = tail;
        }
        if n > MAX_EVIDENCE_IDS {
            return Err(format!("{n} evidence ids, more than {MAX_EVIDENCE_IDS}"));
        }
        Ok(())
    }

    /// The ids as text, for an alert.
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(|id| id.to_string()).collect()
    }
}

impl Serialize for EvidenceIds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_seq(self.iter().map(|id| id.to_string()))
        } else {
            s.serialize_bytes(&self.entries())
        }
    }
}

impl<'de> Deserialize<'de> for EvidenceIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            let buf = serde_bytes::ByteBuf::deserialize(d)?.into_vec();
            Self::check(&buf).map_err(serde::de::Error::custom)?;
            return Ok(EvidenceIds::from_entries(buf));
        }
        let list = Vec::<Box<str>>::deserialize(d)?;
        let mut ids = EvidenceIds::default();
        for id in &list {
            ids.keep(id);
        }
        Ok(ids)
    }
}

/// What varies between alerts; [`RuleEval`] fills in the rest from the rule.
struct AlertParts<'a> {
    state: AlertState,
    group_key: &'a str,
    window: (i64, i64),
    value: f64,
    threshold: f64,
    baseline: Option<Baseline>,
    summary: String,
    count: u64,
    ids: &'a EvidenceIds,
}

fn make_alert(rule: &Rule, p: AlertParts<'_>) -> Alert {
    Alert {
        schema: ALERT_SCHEMA,
        rule: rule.id.clone(),
        kind: rule.kind.name(),
        severity: rule.severity,
        state: p.state,
        group: group_of(&rule.group_by, p.group_key),
        window_start: p.window.0,
        window_end: p.window.1,
        value: p.value,
        threshold: p.threshold,
        baseline: p.baseline,
        summary: p.summary,
        description: rule.description.clone(),
        evidence: Evidence {
            count: p.count,
            event_ids: p.ids.to_strings(),
        },
    }
}

/// `Decrypt`, `failed Decrypt`, `KMS` ... for sentences.
fn calls_phrase(rule: &Rule) -> String {
    use super::model::OutcomeFilter;
    let ops = rule
        .filter
        .operations
        .as_ref()
        .map(|g| g.patterns.join("/"))
        .unwrap_or_else(|| "KMS".to_owned());
    match rule.filter.outcome {
        OutcomeFilter::Failure => format!("failed {ops}"),
        _ => ops,
    }
}

/// `5 minutes`, `1 hour`, `90 seconds`.
fn duration_phrase(secs: i64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} hour{}", s / 3600, if s == 3600 { "" } else { "s" }),
        s if s % 60 == 0 => format!("{} minute{}", s / 60, if s == 60 { "" } else { "s" }),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_ids_keep_the_first_ten_in_order_and_save_as_a_list() {
        let mut ids = EvidenceIds::default();
        assert_eq!(ids.len(), 0);
        let long = "x".repeat(70_000);
        ids.keep(&long);
        ids.keep("");
        for i in 0..12 {
            ids.keep(&format!("id-{i}"));
        }
        let kept = ids.to_strings();
        assert_eq!(kept.len(), MAX_EVIDENCE_IDS);
        assert_eq!(ids.len(), MAX_EVIDENCE_IDS);
        assert_eq!((&*kept[0], &*kept[1], &*kept[9]), ("", "id-0", "id-8"));
        let json = serde_json::to_string(&ids).unwrap();
        assert!(json.starts_with(r#"["","id-0","id-1""#), "{json}");
        let back: EvidenceIds = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ids);
        // A saved list longer than the cap keeps its first ten.
        let many: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
        let back: EvidenceIds = serde_json::from_value(serde_json::json!(many)).unwrap();
        assert_eq!(back.to_strings().last().map(String::as_str), Some("e9"));
    }

    #[test]
    fn uuid_ids_take_17_bytes_and_come_back_byte_for_byte() {
        let ids = [
            "ab22a04a-5362-4181-a1c3-317fcffd0573",
            // Not as the uuid crate writes them: kept as text, unchanged.
            "AB22A04A-5362-4181-A1C3-317FCFFD0573",
            "ab22a04a5362418 1a1c3317fcffd0573",
            "{ab22a04a-5362-4181-a1c3-317fcffd0573}",
            "urn:uuid:ab22a04a-5362-4181-a1c3-317fcffd0573",
            "ab22a04a53624181a1c3317fcffd0573",
            "ab22a04a-5362-4181-a1c3-317fcffd057",
            "",
        ];
        let mut kept = EvidenceIds::default();
        for id in ids {
            kept.keep(id);
        }
        assert_eq!(kept.to_strings(), ids);
        assert_eq!(kept.len(), ids.len());
        assert!(matches!(EvidenceIds::one(ids[0]), EvidenceIds::Uuid(_)));
        assert_eq!(EvidenceIds::one(ids[0]).entries().len(), 17);
        assert_eq!(EvidenceIds::one(ids[1]).entries().len(), 3 + 36);
    }

    #[test]
    fn binary_formats_get_the_buffer_and_bad_buffers_are_refused() {
        let mut ids = EvidenceIds::one("ab22a04a-5362-4181-a1c3-317fcffd0573");
        ids.keep("id-1");
        // A binary format (the state file's MessagePack) gets and gives back the buffer itself.
        let bytes = rmp_serde::to_vec(&ids).unwrap();
        assert_eq!(
            bytes.len(),
            2 + 17 + 7,
            "bin8 marker and length, then the buffer"
        );
        assert_eq!(rmp_serde::from_slice::<EvidenceIds>(&bytes).unwrap(), ids);
        // A lone UUID, kept inline, is saved as its entry and comes back inline.
        let one = EvidenceIds::one("ab22a04a-5362-4181-a1c3-317fcffd0573");
        let bytes = rmp_serde::to_vec(&one).unwrap();
        assert_eq!(bytes.len(), 2 + 17);
        let back = rmp_serde::from_slice::<EvidenceIds>(&bytes).unwrap();
        assert!(matches!(back, EvidenceIds::Uuid(_)), "{back:?}");
        assert_eq!(back, one);
        assert_eq!(std::mem::size_of::<EvidenceIds>(), 24);
        for (bad, why) in [
            (vec![UUID_TAG, 1, 2], "cut short"),
            (vec![TEXT_TAG, 5, 0, b'a'], "cut short"),
            (vec![TEXT_TAG, 1, 0, 0xff], "not UTF-8"),
            (vec![7], "unknown tag"),
            ([TEXT_TAG, 0, 0].repeat(11), "more than 10"),
        ] {
            let saved = rmp_serde::to_vec(&serde_bytes::Bytes::new(&bad)).unwrap();
            let err = rmp_serde::from_slice::<EvidenceIds>(&saved).unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
    }
}
