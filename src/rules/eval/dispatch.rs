//! Which rules a call can concern, judged once per operation instead of once per call and rule.

use std::collections::HashMap;

use crate::decode::{KmsCall, OpClass};
use crate::rules::model::{ClassFilter, OutcomeFilter, Rule, RuleKind};

use super::RuleEval;

/// Operations whose rule lists are kept. KMS has under a hundred operations; past this (names
/// from forged logs), a call's rules are judged afresh each time, which is only slower.
pub const MAX_DISPATCH_OPERATIONS: usize = 1_024;

/// Per operation, class, outcome and cross-account flag (a call's [`Shape`]), the indices
/// (ascending) of the rules that may take a call of that shape. A rule is left out only when its
/// filter's tests of those, or a ratio rule's numerator and denominator, reject every call of
/// the shape: a threshold,
/// spike, ratio, event or new-principal rule does nothing at all with a call its filter rejects
/// (the filter is its first step). `unused` rules see every call (a key's deletion retires it
/// whatever the filter).
#[derive(Debug, Default)]
pub struct Dispatch {
    /// By operation, the list of each shape (indexed by [`Shape::slot`]).
    by_operation: HashMap<Box<str>, ShapeLists, foldhash::fast::RandomState>,
    /// Scratch list for operations past [`MAX_DISPATCH_OPERATIONS`].
    uncached: Vec<u32>,
}

/// What of a call, besides its operation, decides which rules may take it.
#[derive(Debug, Clone, Copy)]
struct Shape {
    class: OpClass,
    failed: bool,
    cross_account: bool,
}

const SHAPES: usize = 8;

/// One operation's rule lists, by [`Shape::slot`]; `None` until a call of the shape comes.
type ShapeLists = [Option<Box<[u32]>>; SHAPES];

impl Shape {
    fn of(call: &KmsCall) -> Shape {
        Shape {
            class: call.class,
            failed: call.error_code.is_some(),
            cross_account: call.cross_account,
        }
    }

    fn slot(self) -> usize {
        usize::from(self.class == OpClass::Management) * 4
            + usize::from(self.failed) * 2
            + usize::from(self.cross_account)
    }
}

/// Whether `rule` may take some call of `operation` and `shape`: the tests of
/// [`Filter::matches`](crate::rules::Filter::matches) that depend on nothing else.
fn may_take(rule: &Rule, operation: &str, shape: Shape) -> bool {
    let f = &rule.filter;
    let class_ok = match f.class {
        ClassFilter::Any => true,
        ClassFilter::Crypto => shape.class == OpClass::Crypto,
        ClassFilter::Management => shape.class == OpClass::Management,
    } && match f.outcome {
        OutcomeFilter::Any => true,
        OutcomeFilter::Ok => !shape.failed,
        OutcomeFilter::Failure => shape.failed,
    } && (f.error_codes.is_none() || shape.failed)
        && f.cross_account
            .is_none_or(|want| want == shape.cross_account);
    match &rule.kind {
        RuleKind::Unused { .. } => true,
        RuleKind::Ratio {
            numerator,
            denominator,
            ..
        } => {
            class_ok
                && f.operations.as_ref().is_none_or(|g| g.is_match(operation))
                && (numerator.is_match(operation) || denominator.is_match(operation))
        }
        _ => class_ok && f.operations.as_ref().is_none_or(|g| g.is_match(operation)),
    }
}

impl Dispatch {
    /// The rules of `rules` (indices, ascending) that may take `call`.
    pub fn rules_for(&mut self, rules: &[RuleEval], call: &KmsCall) -> &[u32] {
        let shape = Shape::of(call);
        let slot = shape.slot();
        // Two lookups when the list is new (the borrow checker cannot see the first one ends).
        if self
            .by_operation
            .get(&*call.operation)
            .is_some_and(|c| c[slot].is_some())
        {
            return self.by_operation[&*call.operation][slot]
                .as_deref()
                .expect("just checked");
        }
        self.uncached.clear();
        self.uncached.extend(
            (0..rules.len() as u32)
                .filter(|&i| may_take(&rules[i as usize].rule, &call.operation, shape)),
        );
        if self.by_operation.len() >= MAX_DISPATCH_OPERATIONS
            && !self.by_operation.contains_key(&*call.operation)
        {
            return &self.uncached;
        }
        let slot = &mut self.by_operation.entry(call.operation.clone()).or_default()[slot];
        slot.insert(self.uncached.as_slice().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::op;
    use crate::rules::{load_dir, RuleEval};

    /// The rules of the repository's `rules/`, ready to evaluate.
    fn shipped() -> Vec<RuleEval> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        load_dir(&dir)
            .unwrap()
            .rules
            .into_iter()
            .map(|r| RuleEval::new(r, 300, Default::default()))
            .collect()
    }

    /// Every shipped rule whose filter takes a call is among the rules the call is dispatched
    /// to, for calls of every shape; and a call is not sent to rules only other operations
    /// concern.
    #[test]
    fn a_call_reaches_every_rule_that_can_take_it_and_not_the_others() {
        let rules = shipped();
        let mut dispatch = Dispatch::default();
        let mut sent = 0;
        for operation in [
            "Decrypt",
            "Encrypt",
            "PutKeyPolicy",
            "CreateGrant",
            "Unheard",
        ] {
            for (failed, cross) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut call = op(operation, "arn:aws:kms:us-east-1:111111111111:key/k", "p");
                call.error_code = failed.then(|| "AccessDenied".into());
                call.cross_account = cross;
                // Twice: the second answer comes from the kept list.
                for _ in 0..2 {
                    let to = dispatch.rules_for(&rules, &call).to_vec();
                    assert!(to.windows(2).all(|w| w[0] < w[1]), "{to:?}");
                    for (i, r) in rules.iter().enumerate() {
                        let takes = match &r.rule.kind {
                            RuleKind::Unused { .. } => true,
                            RuleKind::Ratio {
                                numerator,
                                denominator,
                                ..
                            } => {
                                r.rule.filter.matches(&call, Some("k"))
                                    && (numerator.is_match(operation)
                                        || denominator.is_match(operation))
                            }
                            _ => r.rule.filter.matches(&call, Some("k")),
                        };
                        assert!(
                            !takes || to.contains(&(i as u32)),
                            "{operation} {failed} {cross}: {} left out",
                            r.rule.id
                        );
                    }
                    sent += to.len();
                }
            }
        }
        let decrypt = op("Decrypt", "k", "p");
        let to = dispatch.rules_for(&rules, &decrypt);
        let ids: Vec<&str> = to
            .iter()
            .map(|&i| rules[i as usize].rule.id.as_str())
            .collect();
        assert!(
            ids.contains(&"decrypt-spike-key") && ids.contains(&"unused-key"),
            "{ids:?}"
        );
        assert!(
            !ids.contains(&"key-disabled") && !ids.contains(&"failed-decrypts"),
            "{ids:?}"
        );
        assert!(sent < 40 * rules.len(), "{sent} of {}", 40 * rules.len());
    }

    /// Past the cap of kept operations, calls are still dispatched correctly.
    #[test]
    fn operations_past_the_cap_are_judged_each_time() {
        let rules = shipped();
        let mut dispatch = Dispatch::default();
        for i in 0..MAX_DISPATCH_OPERATIONS {
            dispatch.rules_for(&rules, &op(&format!("Made{i}"), "k", "p"));
        }
        assert_eq!(dispatch.by_operation.len(), MAX_DISPATCH_OPERATIONS);
        let kept = dispatch.rules_for(&rules, &op("Made0", "k", "p")).to_vec();
        let fresh = dispatch
            .rules_for(&rules, &op("MadeLater", "k", "p"))
            .to_vec();
        assert_eq!(kept, fresh);
        assert_eq!(dispatch.by_operation.len(), MAX_DISPATCH_OPERATIONS);
        let disable = dispatch
            .rules_for(&rules, &op("DisableKey", "k", "p"))
            .to_vec();
        assert!(disable.len() > fresh.len());
    }
}
