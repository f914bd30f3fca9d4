//! End-to-end tests of the loader: rule files (and inventory files) in, the rule set or every
//! problem with its file, line, column and message out.

use std::fs;
use std::path::{Path, PathBuf};

use super::{load_dir, load_paths, RuleProblem};
use crate::rules::model::{ClassFilter, Dim, OutcomeFilter, RuleKind, RuleSet, Severity};

/// A valid threshold rule header and required fields, lines 1-5; snippets append from line 6.
const HEAD: &str =
    "[[rule]]\nid = \"r\"\nkind = \"threshold\"\nseverity = \"low\"\ndescription = \"d\"\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write test file");
    path
}

/// Problems of one file as (line, col, message); the file must fail to load.
fn problems(text: &str) -> Vec<Located> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "rules.toml", text);
    let err = load_paths(std::slice::from_ref(&file)).expect_err("rules should not load");
    err.problems
        .into_iter()
        .map(|p| {
            assert_eq!(p.file, file, "{p}");
            (p.line, p.col, p.message)
        })
        .collect()
}

fn load_text(text: &str) -> RuleSet {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "rules.toml", text);
    match load_paths(&[file]) {
        Ok(set) => set,
        Err(e) => panic!("rules should load: {:#?}", e.problems),
    }
}

/// A problem as (line, col, message).
type Located = (usize, usize, String);

fn p(line: usize, col: usize, message: &str) -> Located {
    (line, col, message.to_string())
}

#[test]
fn bad_snippets_report_exact_problems() {
    let cases: Vec<(&str, String, Vec<Located>)> = vec![
            (
                "unknown field with suggestion",
                format!("{HEAD}min_count = 1\nmin_cont = 3\n"),
                vec![p(7, 1, "unknown field \"min_cont\" (did you mean \"min_count\"?)")],
            ),
            (
                "unknown field without suggestion",
                format!("{HEAD}min_count = 1\ncolour = \"red\"\n"),
                vec![p(7, 1, "unknown field \"colour\"")],
            ),
            (
                "suggestion names a field of another kind",
                format!("{HEAD}min_count = 1\nlearning_sec = 3\n"),
                vec![p(7, 1, "unknown field \"learning_sec\" (did you mean \"learning_secs\"?)")],
            ),
            (
                "distinct names a dimension the rule groups by",
                format!("{HEAD}min_count = 1\ngroup_by = [\"principal\"]\ndistinct = \"principal\"\n"),
                vec![p(8, 12, "distinct = \"principal\" counts a dimension the rule also groups by: every group would count 1; remove it from group_by or choose another")],
            ),
            (
                "distinct names no dimension",
                format!("{HEAD}min_count = 1\ndistinct = \"keys\"\n"),
                vec![p(7, 12, "unknown distinct \"keys\" (did you mean \"key\"?)")],
            ),
            (
                "distinct is not a parameter of event rules",
                "[[rule]]\nid = \"e\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\ndistinct = \"key\"\n"
                    .to_string(),
                vec![p(6, 1, "\"distinct\" is not a parameter of kind \"event\"")],
            ),
            (
                "wrong type for a request filter",
                format!("{HEAD}min_count = 1\npolicy_public = \"yes\"\n"),
                vec![p(7, 17, "expected a boolean for \"policy_public\", got a string")],
            ),
            (
                "wrong type for id",
                "[[rule]]\nid = 5\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![p(2, 6, "expected a string for \"id\", got an integer")],
            ),
            (
                "wrong type for cross_account",
                format!("{HEAD}min_count = 1\ncross_account = \"yes\"\n"),
                vec![p(7, 17, "expected a boolean for \"cross_account\", got a string")],
            ),
            (
                "wrong type for operations",
                format!("{HEAD}min_count = 1\noperations = \"Decrypt\"\n"),
                vec![p(7, 14, "expected an array of strings for \"operations\", got a string")],
            ),
            (
                "wrong element type in operations",
                format!("{HEAD}min_count = 1\noperations = [\"Decrypt\", 3]\n"),
                vec![p(7, 26, "expected a string in \"operations\", got an integer")],
            ),
            (
                "string where an integer is required",
                format!("{HEAD}min_count = \"5\"\n"),
                vec![p(6, 13, "expected an integer for \"min_count\", got a string")],
            ),
            (
                "negative integer",
                format!("{HEAD}min_count = -3\n"),
                vec![p(6, 13, "min_count must be an integer >= 1, got -3")],
            ),
            (
                "float where an integer is required",
                format!("{HEAD}min_count = 2.5\n"),
                vec![p(6, 13, "min_count must be an integer >= 1, got 2.5")],
            ),
            (
                "integer overflowing i64",
                format!("{HEAD}min_count = 99999999999999999999\n"),
                vec![p(6, 13, "min_count must be an integer >= 1, got 99999999999999999999")],
            ),
            (
                "window too short",
                format!("{HEAD}min_count = 1\nwindow_secs = 30\n"),
                vec![p(7, 15, "window_secs must be an integer between 60 and 604800, got 30")],
            ),
            (
                "window too long",
                format!("{HEAD}min_count = 1\nwindow_secs = 604860\n"),
                vec![p(7, 15, "window_secs must be an integer between 60 and 604800, got 604860")],
            ),
            (
                "window not a multiple of 60",
                format!("{HEAD}min_count = 1\nwindow_secs = 90\n"),
                vec![p(7, 15, "window_secs must be a multiple of 60, got 90")],
            ),
            (
                "parameter of another kind",
                format!("{HEAD}min_count = 1\nmin_ratio = 2.0\n"),
                vec![p(7, 1, "\"min_ratio\" is not a parameter of kind \"threshold\"")],
            ),
            (
                "event takes no parameters",
                "[[rule]]\nid = \"e\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\nmin_count = 1\n"
                    .to_string(),
                vec![p(6, 1, "\"min_count\" is not a parameter of kind \"event\"")],
            ),
            (
                "missing required kind parameter",
                "x = 1\n[[rule]]\nid = \"q\"\nkind = \"ratio\"\nseverity = \"low\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![
                    p(1, 1, "unknown top-level key \"x\": a rule file holds only [[rule]] tables"),
                    p(2, 1, "missing required field \"max_ratio\" for kind \"ratio\""),
                ],
            ),
            (
                "missing common fields",
                "\n  [[rule]]\nmin_count = 4\n".to_string(),
                vec![
                    p(2, 3, "missing required field \"id\""),
                    p(2, 3, "missing required field \"kind\""),
                    p(2, 3, "missing required field \"severity\""),
                    p(2, 3, "missing required field \"description\""),
                ],
            ),
            (
                "unknown kind",
                "[[rule]]\nid = \"r\"\nkind = \"treshold\"\nseverity = \"low\"\ndescription = \"d\"\nmin_count = 1\n"
                    .to_string(),
                vec![p(3, 8, "unknown kind \"treshold\" (did you mean \"threshold\"?)")],
            ),
            (
                "unknown severity",
                "[[rule]]\nid = \"r\"\nkind = \"event\"\nseverity = \"urgent\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![p(
                    4,
                    12,
                    "unknown severity \"urgent\" (expected one of: info, low, medium, high, critical)",
                )],
            ),
            (
                "bad id",
                "[[rule]]\nid = \"Bad_id\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\n"
                    .to_string(),
                vec![p(
                    2,
                    6,
                    "invalid rule id \"Bad_id\": use lowercase letters, digits and \"-\", starting with a letter or digit",
                )],
            ),
            (
                "empty description",
                "[[rule]]\nid = \"r\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \" \"\n"
                    .to_string(),
                vec![p(
                    5,
                    15,
                    "\"description\" must not be empty: say what the alert means and what to do",
                )],
            ),
            (
                "invalid glob",
                format!("{HEAD}min_count = 1\noperations = [\"Decrypt\", \"[abc\"]\n"),
                vec![p(
                    7,
                    26,
                    "invalid glob \"[abc\" in operations: unclosed character class; missing ']'",
                )],
            ),
            (
                "empty include list",
                format!("{HEAD}min_count = 1\nkeys = []\n"),
                vec![p(7, 8, "\"keys\" is empty: omit the field to match everything")],
            ),
            (
                "empty exclude list",
                format!("{HEAD}min_count = 1\nexclude_principals = []\n"),
                vec![p(7, 22, "\"exclude_principals\" is empty: omit the field to exclude nothing")],
            ),
            (
                "unknown class and outcome",
                format!("{HEAD}min_count = 1\nclass = \"cryto\"\noutcome = \"bad\"\n"),
                vec![
                    p(7, 9, "unknown class \"cryto\" (did you mean \"crypto\"?)"),
                    p(8, 11, "unknown outcome \"bad\" (expected one of: ok, failure, any)"),
                ],
            ),
            (
                "error codes with outcome ok",
                format!("{HEAD}min_count = 1\noutcome = \"ok\"\nerror_codes = [\"AccessDenied\"]\n"),
                vec![p(
                    8,
                    15,
                    "error_codes never match when outcome is \"ok\": remove one of them",
                )],
            ),
            (
                "group_by duplicate and unknown",
                format!("{HEAD}min_count = 1\ngroup_by = [\"key\", \"key\", \"principle\", \"colour\"]\n"),
                vec![
                    p(7, 20, "duplicate dimension \"key\" in group_by: remove it"),
                    p(7, 27, "unknown dimension \"principle\" in group_by (did you mean \"principal\"?)"),
                    p(
                        7,
                        40,
                        "unknown dimension \"colour\" in group_by (expected one of: key, principal, service, account, region, operation, error)",
                    ),
                ],
            ),
            (
                "group_by of unused",
                "[[rule]]\nid = \"u\"\nkind = \"unused\"\nseverity = \"low\"\ndescription = \"d\"\nunused_for_secs = 60\ngroup_by = [\"principal\"]\n"
                    .to_string(),
                vec![p(7, 12, "group_by of kind \"unused\" must be [\"key\"] or omitted")],
            ),
            (
                "group_by of new-principal",
                "[[rule]]\nid = \"n\"\nkind = \"new-principal\"\nseverity = \"low\"\ndescription = \"d\"\nlearning_secs = 0\ngroup_by = [\"key\"]\n"
                    .to_string(),
                vec![p(
                    7,
                    12,
                    "group_by of kind \"new-principal\" must be [\"key\", \"principal\"] or omitted",
                )],
            ),
            (
                "spike numbers",
                "[[rule]]\nid = \"s\"\nkind = \"spike\"\nseverity = \"low\"\ndescription = \"d\"\nz = nan\nmin_ratio = -1\nstddev_floor = inf\nbaseline_windows = 0\n"
                    .to_string(),
                vec![
                    p(6, 5, "z must be a finite number >= 0, got nan"),
                    p(7, 13, "min_ratio must be a number >= 0, got -1"),
                    p(8, 16, "stddev_floor must be a finite number >= 0, got inf"),
                    p(9, 20, "baseline_windows must be an integer between 1 and 1000, got 0"),
                ],
            ),
            (
                "min_baseline_windows above baseline_windows",
                "[[rule]]\nid = \"s\"\nkind = \"spike\"\nseverity = \"low\"\ndescription = \"d\"\nbaseline_windows = 4\nmin_baseline_windows = 5\n"
                    .to_string(),
                vec![p(
                    7,
                    24,
                    "min_baseline_windows must not exceed baseline_windows (4), got 5",
                )],
            ),
            (
                "ratio parameters",
                "[[rule]]\nid = \"q\"\nkind = \"ratio\"\nseverity = \"low\"\ndescription = \"d\"\nmax_ratio = 0\nnumerator = []\n"
                    .to_string(),
                vec![
                    p(6, 13, "max_ratio must be a number > 0, got 0"),
                    p(7, 13, "\"numerator\" is empty: omit the field to use the default [\"Decrypt\"]"),
                ],
            ),
            (
                "unused and new-principal minimums",
                "[[rule]]\nid = \"u\"\nkind = \"unused\"\nseverity = \"low\"\ndescription = \"d\"\nunused_for_secs = 59\n[[rule]]\nid = \"n\"\nkind = \"new-principal\"\nseverity = \"low\"\ndescription = \"d\"\nlearning_secs = -1\n"
                    .to_string(),
                vec![
                    p(6, 19, "unused_for_secs must be an integer >= 60, got 59"),
                    p(12, 17, "learning_secs must be an integer >= 0, got -1"),
                ],
            ),
            (
                "rule as a plain table",
                "[rule]\nid = \"r\"\n".to_string(),
                vec![p(1, 2, "\"rule\" must be an array of tables: write [[rule]], not [rule]")],
            ),
            (
                "misspelt rule header",
                "[[rules]]\nid = \"r\"\n".to_string(),
                vec![p(1, 3, "unknown top-level key \"rules\" (did you mean \"rule\"?)")],
            ),
            (
                "duplicate id in one file",
                format!("{HEAD}min_count = 1\n{HEAD}min_count = 2\n"),
                vec![p(8, 6, "duplicate rule id \"r\" (first defined at RULES:1)")],
            ),
        ];
    for (name, text, expected) in cases {
        let got: Vec<_> = problems(&text)
            .into_iter()
            .map(|(l, c, m)| (l, c, m.replace(&rules_path_in(&m), "RULES")))
            .collect();
        assert_eq!(got, expected, "case {name}");
    }
}

/// The rules.toml path inside a duplicate-id message, so tables can say RULES.
fn rules_path_in(message: &str) -> String {
    message
        .split_once("first defined at ")
        .and_then(|(_, rest)| rest.rsplit_once(':'))
        .map_or_else(|| "\u{0}".to_string(), |(path, _)| path.to_string())
}

#[test]
fn every_problem_of_a_file_is_reported_in_order() {
    let text = "\
[[rule]]
id = \"a\"
kind = \"threshold\"
severity = \"hgh\"
description = \"d\"
min_count = 0
treshold = 3

[[rule]]
id = \"b\"
kind = \"spike\"
severity = \"low\"
min_ratio = \"3\"
";
    assert_eq!(
        problems(text),
        vec![
            p(4, 12, "unknown severity \"hgh\" (did you mean \"high\"?)"),
            p(6, 13, "min_count must be an integer >= 1, got 0"),
            p(7, 1, "unknown field \"treshold\""),
            p(9, 1, "missing required field \"description\""),
            p(13, 13, "expected a number for \"min_ratio\", got a string"),
        ]
    );
}

#[test]
fn syntax_errors_and_later_semantic_problems_are_both_reported() {
    let text = "\
[[rule]]
id = \"a\"
kind = = \"threshold\"
severity = \"low\"
description = \"d\"

[[rule]]
id = \"b\"
kind = \"threshold\"
severity = \"low\"
description = \"d\"
min_count = 0
";
    // Rule "a" keeps its recovered (broken) `kind` quietly: no "missing" or "wrong type" echo.
    assert_eq!(
        problems(text),
        vec![
            p(3, 8, "extra `=`, expected nothing"),
            p(3, 10, "unexpected key or value, expected newline, `#`"),
            p(12, 13, "min_count must be an integer >= 1, got 0"),
        ]
    );
}

#[test]
fn problems_of_every_file_are_reported_and_duplicates_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
            dir.path(),
            "a.toml",
            "[[rule]]\nid = \"x\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"d\"\nbogus = 1\n",
        );
    let b = write(
            dir.path(),
            "b.toml",
            "# second\n[[rule]]\nid = \"x\"\nkind = \"event\"\nseverity = \"lo\"\ndescription = \"d\"\n",
        );
    write(dir.path(), "README.md", "not a rule file");
    let err = load_dir(dir.path()).expect_err("problems expected");
    let got: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            format!("{}:6:1: unknown field \"bogus\"", a.display()),
            format!(
                "{}:3:6: duplicate rule id \"x\" (first defined at {}:1)",
                b.display(),
                a.display()
            ),
            format!(
                "{}:5:12: unknown severity \"lo\" (did you mean \"low\"?)",
                b.display()
            ),
        ]
    );
    // The same through load_paths, files given explicitly in the other order.
    let err = load_paths(&[b.clone(), a.clone()]).expect_err("problems expected");
    let got: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            format!(
                "{}:5:12: unknown severity \"lo\" (did you mean \"low\"?)",
                b.display()
            ),
            format!(
                "{}:2:6: duplicate rule id \"x\" (first defined at {}:2)",
                a.display(),
                b.display()
            ),
            format!("{}:6:1: unknown field \"bogus\"", a.display()),
        ]
    );
}

#[test]
fn file_level_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    write(&empty, "notes.md", "[[rule]]");
    let err = load_dir(&empty).expect_err("no rules");
    assert_eq!(
        err.problems,
        vec![RuleProblem {
            file: empty.clone(),
            line: 1,
            col: 1,
            message: format!("no rules found in {}", empty.display()),
        }]
    );

    let err = load_paths(&[]).expect_err("no paths");
    assert_eq!(
        err.problems[0].message,
        "no rules found: no rule files or directories given"
    );

    let bad = dir.path().join("bad.toml");
    fs::write(&bad, b"# ok\n\xff\xfe").expect("write");
    let missing = dir.path().join("missing.toml");
    let err = load_paths(&[bad.clone(), missing.clone()]).expect_err("problems");
    assert_eq!(err.problems.len(), 2, "{:#?}", err.problems);
    assert_eq!(
        err.problems[0].to_string(),
        format!(
            "{}:1:1: file is not valid UTF-8 (first invalid byte at offset 5)",
            bad.display()
        )
    );
    assert_eq!((err.problems[1].line, err.problems[1].col), (1, 1));
    assert!(
        err.problems[1]
            .message
            .starts_with("cannot read rule file: No such file or directory"),
        "{}",
        err.problems[1]
    );
}

#[test]
fn inventory_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    fs::create_dir(&rules).expect("mkdir");
    let rule = |id: &str, inventory: &str| {
        format!(
                "[[rule]]\nid = \"{id}\"\nkind = \"unused\"\nseverity = \"low\"\ndescription = \"d\"\nunused_for_secs = 86400\ninventory = \"{inventory}\"\n"
            )
    };
    write(
            &rules,
            "keys.txt",
            "# inventory\n\narn:aws:kms:eu-west-1:111122223333:key/k1  # main\n  arn:aws:kms:eu-west-1:111122223333:key/k2\narn:aws:kms:eu-west-1:111122223333:key/k1\n",
        );
    let good = write(&rules, "good.toml", &rule("good", "keys.txt"));
    let set = load_paths(&[good]).expect("inventory loads");
    match &set.rules[0].kind {
        RuleKind::Unused {
            unused_for_secs,
            inventory,
        } => {
            assert_eq!(*unused_for_secs, 86400);
            assert_eq!(
                inventory,
                &vec![
                    "arn:aws:kms:eu-west-1:111122223333:key/k1".to_string(),
                    "arn:aws:kms:eu-west-1:111122223333:key/k2".to_string(),
                ]
            );
        }
        other => panic!("unexpected kind {other:?}"),
    }

    let bad_keys = write(
            &rules,
            "bad-keys.txt",
            "arn:aws:kms:eu-west-1:111122223333:key/k1\nalias/prod\n\narn:aws:kms:eu-west-1:111122223333:alias/x\n",
        );
    let bad = write(&rules, "bad.toml", &rule("bad", "bad-keys.txt"));
    let missing = write(&rules, "missing.toml", &rule("missing", "nope.txt"));
    let err = load_paths(&[bad, missing.clone()]).expect_err("bad inventories");
    let got: Vec<(PathBuf, usize, usize, String)> = err
        .problems
        .into_iter()
        .map(|p| (p.file, p.line, p.col, p.message))
        .collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(
            got[0],
            (
                bad_keys.clone(),
                2,
                1,
                "invalid key ARN \"alias/prod\" in inventory: expected arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"
                    .to_string()
            )
        );
    assert_eq!((&got[1].0, got[1].1), (&bad_keys, 4));
    assert_eq!((&got[2].0, got[2].1, got[2].2), (&missing, 7, 13));
    assert!(
        got[2].3.starts_with(&format!(
            "cannot read inventory file {}: ",
            rules.join("nope.txt").display()
        )),
        "{}",
        got[2].3
    );
}

#[test]
fn distinct_and_request_filters_load() {
    let set = load_text(&format!(
        "{HEAD}min_count = 10\noutcome = \"failure\"\ngroup_by = [\"principal\"]\ndistinct = \"key\"\n\
         [[rule]]\nid = \"p\"\nkind = \"event\"\nseverity = \"high\"\ndescription = \"d\"\n\
         policy_public = true\npolicy_lockout_bypass = false\ngrantee_cross_account = true\n"
    ));
    assert_eq!(set.rules[0].distinct, Some(Dim::Key));
    let f = &set.rules[1].filter;
    assert_eq!(
        (
            f.policy_public,
            f.policy_lockout_bypass,
            f.grantee_cross_account
        ),
        (Some(true), Some(false), Some(true))
    );
    assert_eq!(set.rules[1].distinct, None);
}

#[test]
fn defaults_are_applied_per_kind() {
    let set = load_text(
        "\
[[rule]]
id = \"t\"
kind = \"threshold\"
severity = \"info\"
description = \"d\"
min_count = 7

[[rule]]
id = \"s\"
kind = \"spike\"
severity = \"low\"
description = \"d\"
baseline_windows = 5

[[rule]]
id = \"q\"
kind = \"ratio\"
severity = \"medium\"
description = \"d\"
max_ratio = 2

[[rule]]
id = \"u\"
kind = \"unused\"
severity = \"high\"
description = \"d\"
unused_for_secs = 3600

[[rule]]
id = \"e\"
kind = \"event\"
severity = \"critical\"
description = \"d\"
error_codes = [\"AccessDenied\", \"KMSInvalidStateException\"]
window_secs = 600

[[rule]]
id = \"n\"
kind = \"new-principal\"
severity = \"low\"
description = \"d\"
learning_secs = 0
outcome = \"any\"
",
    );
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["t", "s", "q", "u", "e", "n"]);
    let lines: Vec<usize> = set.rules.iter().map(|r| r.origin.line).collect();
    assert_eq!(lines, [1, 8, 15, 22, 29, 37]);

    let expect: [(&[Dim], ClassFilter, OutcomeFilter, Option<i64>); 6] = [
        (&[Dim::Key], ClassFilter::Any, OutcomeFilter::Any, None),
        (&[Dim::Key], ClassFilter::Any, OutcomeFilter::Any, None),
        (&[Dim::Key], ClassFilter::Any, OutcomeFilter::Any, None),
        (&[Dim::Key], ClassFilter::Crypto, OutcomeFilter::Ok, None),
        (
            &[Dim::Key, Dim::Principal, Dim::Operation],
            ClassFilter::Any,
            OutcomeFilter::Any,
            Some(600),
        ),
        (
            &[Dim::Key, Dim::Principal],
            ClassFilter::Crypto,
            OutcomeFilter::Any,
            None,
        ),
    ];
    for (rule, (group_by, class, outcome, window)) in set.rules.iter().zip(expect) {
        assert_eq!(rule.group_by, group_by, "{}", rule.id);
        assert_eq!(rule.filter.class, class, "{}", rule.id);
        assert_eq!(rule.filter.outcome, outcome, "{}", rule.id);
        assert_eq!(rule.window_secs, window, "{}", rule.id);
    }

    assert!(matches!(
        set.rules[0].kind,
        RuleKind::Threshold { min_count: 7 }
    ));
    match &set.rules[1].kind {
        RuleKind::Spike {
            baseline_windows,
            min_baseline_windows,
            min_count,
            min_ratio,
            z,
            stddev_floor,
        } => {
            assert_eq!(
                (*baseline_windows, *min_baseline_windows, *min_count),
                (5, 3, 100)
            );
            assert_eq!((*min_ratio, *z, *stddev_floor), (3.0, 4.0, 1.0));
        }
        other => panic!("unexpected kind {other:?}"),
    }
    match &set.rules[2].kind {
        RuleKind::Ratio {
            numerator,
            denominator,
            max_ratio,
            min_count,
        } => {
            assert_eq!(numerator.patterns, ["Decrypt"]);
            assert_eq!(
                denominator.patterns,
                ["Encrypt", "GenerateDataKey*", "ReEncrypt"]
            );
            assert!(denominator.is_match("GenerateDataKeyWithoutPlaintext"));
            assert_eq!((*max_ratio, *min_count), (2.0, 100));
        }
        other => panic!("unexpected kind {other:?}"),
    }
    assert!(matches!(
        &set.rules[3].kind,
        RuleKind::Unused { unused_for_secs: 3600, inventory } if inventory.is_empty()
    ));
    assert!(matches!(set.rules[4].kind, RuleKind::Event));
    assert_eq!(
        set.rules[4].filter.error_codes,
        Some(vec![
            "AccessDeniedException".to_string(),
            "KMSInvalidStateException".to_string()
        ])
    );
    assert!(matches!(
        set.rules[5].kind,
        RuleKind::NewPrincipal { learning_secs: 0 }
    ));
}

#[test]
fn filters_compile() {
    let set = load_text(&format!(
            "{HEAD}min_count = 1\noperations = [\"GenerateDataKey*\"]\nkeys = [\"arn:aws:kms:*:111122223333:key/*\"]\nexclude_services = [\"s3\"]\ncross_account = true\ngroup_by = []\n"
        ));
    let rule = &set.rules[0];
    let ops = rule.filter.operations.as_ref().expect("operations");
    assert!(ops.is_match("GenerateDataKeyPair") && !ops.is_match("Decrypt"));
    assert!(rule
        .filter
        .keys
        .matches(Some("arn:aws:kms:eu-west-1:111122223333:key/abc")));
    assert!(!rule.filter.keys.matches(None));
    assert!(!rule.filter.services.matches(Some("s3")));
    assert!(rule.filter.services.matches(Some("ebs")));
    assert_eq!(rule.filter.cross_account, Some(true));
    assert!(rule.group_by.is_empty());
}

#[test]
fn shipped_rules_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let set = match load_dir(&dir) {
        Ok(set) => set,
        Err(e) => panic!("shipped rules: {:#?}", e.problems),
    };
    assert_eq!(set.rules.len(), 24);
    assert_eq!(set.rules[0].id, "failed-calls-spray");
    assert_eq!(set.rules[0].severity, Severity::High);
    assert_eq!(set.rules[0].origin.line, 3);
    assert_eq!(set.rules[0].distinct, Some(Dim::Key));
    let public = set
        .rules
        .iter()
        .find(|r| r.id == "key-policy-public")
        .unwrap();
    assert_eq!(public.filter.policy_public, Some(true));
    let by_id = |id: &str| {
        set.rules
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("rule {id}"))
    };
    assert!(matches!(
        by_id("decrypt-spike-key-principal").kind,
        RuleKind::Spike {
            baseline_windows: 12,
            min_baseline_windows: 6,
            min_count: 50,
            ..
        }
    ));
    let ratio = by_id("decrypt-encrypt-ratio");
    assert_eq!(ratio.window_secs, Some(3600));
    assert!(matches!(
        ratio.kind,
        RuleKind::Ratio { max_ratio, min_count: 500, .. } if max_ratio == 10.0
    ));
    let unused = by_id("unused-key");
    assert!(matches!(
        unused.kind,
        RuleKind::Unused {
            unused_for_secs: 2_592_000,
            ..
        }
    ));
    assert_eq!(unused.filter.class, ClassFilter::Crypto);
    assert_eq!(unused.filter.outcome, OutcomeFilter::Ok);
    assert!(matches!(
        by_id("key-request-volume").kind,
        RuleKind::Threshold { min_count: 1001 }
    ));
    assert_eq!(
        by_id("new-principal-on-key").group_by,
        [Dim::Key, Dim::Principal]
    );
}

#[test]
fn readme_example_loads() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/README.md"))
        .expect("rules/README.md");
    let example = readme
        .split_once("## A complete example")
        .and_then(|(_, rest)| rest.split_once("```toml\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(example, _)| example)
        .expect("a toml block after the example heading");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "payments-keys.txt",
        "arn:aws:kms:eu-west-1:111122223333:key/k1\n",
    );
    write(dir.path(), "payments.toml", example);
    let set = match load_dir(dir.path()) {
        Ok(set) => set,
        Err(e) => panic!("README example: {:#?}", e.problems),
    };
    let kinds: Vec<&str> = set.rules.iter().map(|r| r.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "threshold",
            "spike",
            "ratio",
            "unused",
            "event",
            "new-principal"
        ]
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // The `;` after `"é"` is at character column 18 (byte column 19).
    let got = problems(
        "[[rule]]\nid = \"r\"\nkind = \"event\"\nseverity = \"low\"\ndescription = \"é\"; x = 1\n",
    );
    assert_eq!(got.first().map(|p| (p.0, p.1)), Some((5, 18)), "{got:#?}");
}
