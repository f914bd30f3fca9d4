use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::raw::table_fields;
use super::*;

const ORIGIN: &str = "/etc/kmswatch/kmswatch.toml";
const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/q";
/// The two required values; 3 lines.
const SOURCE: &str = "[source]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/123456789012/q\"\nbuckets = [\"trail-bucket\"]\n";

fn env_from<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

fn parse_with(text: &str, vars: &[(&str, &str)]) -> Result<ServeConfig, ConfigError> {
    parse(text, Path::new(ORIGIN), &env_from(vars))
}

fn ok(text: &str, vars: &[(&str, &str)]) -> ServeConfig {
    parse_with(text, vars).unwrap_or_else(|e| panic!("{e}"))
}

/// The problems as rendered, the file name dropped: `line:col: message` or `$VAR: message`.
fn problems(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let e = parse_with(text, vars).expect_err("a problem");
    e.problems
        .iter()
        .map(|p| {
            let s = p.to_string();
            s.strip_prefix(&format!("{ORIGIN}:"))
                .map_or(s.clone(), str::to_string)
        })
        .collect()
}

fn defaults(queue: &str, bucket: &str) -> ServeConfig {
    let mut want = ServeConfig::new(SourceConfig::new(queue, vec![bucket.to_string()]));
    want.rules = vec![PathBuf::from("/etc/kmswatch/rules")];
    want
}

/// `EngineConfig` and `DecodeLimits` are not `PartialEq`: compare the whole as printed.
fn assert_same(got: &ServeConfig, want: &ServeConfig) {
    assert_eq!(format!("{got:#?}"), format!("{want:#?}"));
}

#[test]
fn the_example_sets_every_option_to_its_default() {
    let text = include_str!("../../kmswatch.example.toml");
    let got = ok(text, &[]);
    assert_same(
        &got,
        &defaults(
            "https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms",
            "example-org-cloudtrail",
        ),
    );
}

#[test]
fn the_example_names_every_field_of_every_table() {
    let text = include_str!("../../kmswatch.example.toml");
    // Commented-out options (`# key = value`, `# [table]`) count: they are documented too.
    let is_option = |rest: &str| {
        (rest.starts_with('[') && rest.ends_with(']'))
            || rest
                .split_once(" = ")
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    };
    let uncommented: String = text
        .lines()
        .map(|l| l.strip_prefix("# ").filter(|r| is_option(r)).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let root: toml::Table = uncommented.parse().expect("the example parses uncommented");
    // Every table, nested ones included (`alerts.alertmanager`; an array of tables: its first).
    let mut tables = vec![(String::new(), root.clone())];
    let mut checked = 0;
    while let Some((path, table)) = tables.pop() {
        let fields = table_fields(&path).unwrap_or_else(|| panic!("[{path}] is not a table"));
        for field in fields {
            if path.is_empty() && table_fields(field).is_none() {
                continue; // `shutdown_deadline_secs`: written in [service]
            }
            let name = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            let value = table
                .get(*field)
                .unwrap_or_else(|| panic!("{name} missing from the example"));
            let nested = match value {
                toml::Value::Table(t) => Some(t.clone()),
                toml::Value::Array(a) => a.first().and_then(|t| t.as_table()).cloned(),
                _ => None,
            };
            match nested {
                Some(t) if table_fields(&name).is_some() => tables.push((name, t)),
                _ => {}
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 13, "tables checked");
}

#[test]
fn the_required_values_alone_give_the_defaults() {
    assert_same(&ok(SOURCE, &[]), &defaults(QUEUE, "trail-bucket"));
}

#[test]
fn every_table_of_the_top_level_is_known() {
    for field in table_fields("").unwrap() {
        assert!(
            *field == "shutdown_deadline_secs" || table_fields(field).is_some(),
            "{field}"
        );
    }
}

#[test]
fn each_value_out_of_range_is_reported_at_the_value() {
    // (table, `key = value`, message); the line is always the 4th or 5th, see `text` below.
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("source", "receivers = 0", "source.receivers must be between 1 and 64, got 0"),
        ("source", "receivers = 65", "source.receivers must be between 1 and 64, got 65"),
        ("source", "max_messages_per_receive = 0", "source.max_messages_per_receive must be between 1 and 10, got 0"),
        ("source", "max_messages_per_receive = 11", "source.max_messages_per_receive must be between 1 and 10, got 11"),
        ("source", "wait_time_secs = -1", "source.wait_time_secs must be between 0 and 20, got -1"),
        ("source", "wait_time_secs = 21", "source.wait_time_secs must be between 0 and 20, got 21"),
        ("source", "visibility_timeout_secs = 4", "source.visibility_timeout_secs must be between 5 and 43200, got 4"),
        ("source", "failed_message_visibility_secs = -1", "source.failed_message_visibility_secs must be between 0 and 43200, got -1"),
        ("source", "max_visibility_extension_secs = 50000", "source.max_visibility_extension_secs must be between 60 and 43200, got 50000"),
        ("source", "visibility_timeout_secs = 43201", "source.visibility_timeout_secs must be between 5 and 43200, got 43201"),
        ("source", "fetch_concurrency = 0", "source.fetch_concurrency must be between 1 and 256, got 0"),
        ("source", "fetch_concurrency = 257", "source.fetch_concurrency must be between 1 and 256, got 257"),
        ("source", "max_messages_in_flight = 0", "source.max_messages_in_flight must be between 1 and 1000000, got 0"),
        ("source", "max_attempts = 0", "source.max_attempts must be between 1 and 20, got 0"),
        ("source", "max_attempts = 21", "source.max_attempts must be between 1 and 20, got 21"),
        ("source", "retry_base_ms = 0", "source.retry_base_ms must be >= 1, got 0"),
        ("source", "retry_max_ms = 100", "source.retry_max_ms (100) must be >= source.retry_base_ms (200): raise retry_max_ms or lower retry_base_ms"),
        ("source", "queue_depth = 0", "source.queue_depth must be between 1 and 65536, got 0"),
        ("source", "queue_depth = 65537", "source.queue_depth must be between 1 and 65536, got 65537"),
        ("engine", "window_secs = 0", "engine.window_secs must be between 1 and 31622400, got 0"),
        ("engine", "window_secs = 31622401", "engine.window_secs must be between 1 and 31622400, got 31622401"),
        ("engine", "allowed_lateness_secs = -1", "engine.allowed_lateness_secs must be between 0 and 31622400, got -1"),
        ("engine", "dedupe_id_horizon_secs = 600", "engine.dedupe_id_horizon_secs (600) must be >= engine.allowed_lateness_secs (900): late calls must still be recognised as duplicates"),
        ("engine", "allowed_lateness_secs = 90000", "engine.dedupe_id_horizon_secs (3600) must be >= engine.allowed_lateness_secs (90000): late calls must still be recognised as duplicates"),
        ("engine", "max_dedupe_ids = 0", "engine.max_dedupe_ids must be >= 1, got 0"),
        ("engine", "max_dedupe_objects = 0", "engine.max_dedupe_objects must be >= 1, got 0"),
        ("engine", "dedupe_horizon_secs = -1", "engine.dedupe_horizon_secs must be between 0 and 31622400, got -1"),
        ("engine", "max_keys = 0", "engine.max_keys must be >= 1, got 0"),
        ("engine", "max_aliases = -5", "engine.max_aliases must be >= 1, got -5"),
        ("engine", "max_groups_per_rule = 0", "engine.max_groups_per_rule must be >= 1, got 0"),
        ("engine", "max_principals_per_key = 0", "engine.max_principals_per_key must be >= 1, got 0"),
        ("engine", "max_report_rows = 0", "engine.max_report_rows must be >= 1, got 0"),
        ("decode", "max_object_bytes = 0", "decode.max_object_bytes must be >= 1, got 0"),
        ("decode", "max_records_per_object = 0", "decode.max_records_per_object must be >= 1, got 0"),
        ("metrics", "max_label_values = 0", "metrics.max_label_values must be >= 1, got 0"),
        ("metrics", "max_series = 0", "metrics.max_series must be >= 1, got 0"),
        ("service", "shutdown_deadline_secs = 0", "service.shutdown_deadline_secs must be >= 1, got 0"),
        ("state", "save_interval_secs = 0", "state.save_interval_secs must be >= 1, got 0"),
    ];
    for (table, line, message) in cases {
        let (text, at) = if *table == "source" {
            (format!("{SOURCE}{line}\n"), 4)
        } else if *table == "state" {
            (format!("{SOURCE}[state]\npath = \"s\"\n{line}\n"), 6)
        } else {
            (format!("{SOURCE}[{table}]\n{line}\n"), 5)
        };
        let col = line.find(" = ").unwrap() + 4;
        assert_eq!(
            problems(&text, &[]),
            vec![format!("{at}:{col}: {message}")],
            "{line}"
        );
    }
}

#[test]
fn the_largest_and_smallest_values_in_range_are_accepted() {
    let text = format!(
        "shutdown_deadline_secs = 1\n{SOURCE}receivers = 64\nmax_messages_per_receive = 1\nwait_time_secs = 0\n\
         visibility_timeout_secs = 43200\nfetch_concurrency = 256\nmax_attempts = 20\nretry_base_ms = 7\n\
         retry_max_ms = 7\nqueue_depth = 65536\n[engine]\nwindow_secs = 31622400\nallowed_lateness_secs = 0\n\
         dedupe_horizon_secs = 0\ndedupe_id_horizon_secs = 0\nmax_dedupe_ids = 1\nmax_dedupe_objects = 1\n"
    );
    let c = ok(&text, &[]);
    assert_eq!(
        (
            c.source.receivers,
            c.source.max_messages_per_receive,
            c.source.wait_time_secs
        ),
        (64, 1, 0)
    );
    assert_eq!(
        (
            c.source.visibility_timeout_secs,
            c.source.fetch_concurrency,
            c.source.max_attempts
        ),
        (43_200, 256, 20)
    );
    assert_eq!(
        (
            c.source.retry_base_ms,
            c.source.retry_max_ms,
            c.source.queue_depth
        ),
        (7, 7, 65_536)
    );
    assert_eq!(
        (
            c.engine.window_secs,
            c.engine.allowed_lateness_secs,
            c.engine.dedupe_horizon_secs
        ),
        (31_622_400, 0, 0)
    );
    assert_eq!((c.engine.max_dedupe_ids, c.shutdown_deadline_secs), (1, 1));
    assert_eq!(
        (c.engine.dedupe_id_horizon_secs, c.engine.max_dedupe_objects),
        (0, 1)
    );
}

#[test]
fn each_malformed_value_is_reported_with_a_hint() {
    // (text after the required [source] values, problem); [source] lines are 4 onwards.
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("region = \"US East\"", "4:10: invalid source.region \"US East\": expected a region code like us-east-1"),
        ("endpoint_url = \"localhost:4566\"", "4:16: invalid source.endpoint_url \"localhost:4566\": expected an http(s) URL like http://localhost:4566"),
        ("[http]\nlisten = \"localhost:9464\"", "5:10: invalid http.listen \"localhost:9464\": expected IP:PORT, like 127.0.0.1:9464, or 0.0.0.0:9464 for every interface (host names are not resolved)"),
        ("[log]\nformat = \"jsn\"", "5:10: invalid log.format \"jsn\": did you mean \"json\"?"),
        ("[log]\nformat = \"xml\"", "5:10: invalid log.format \"xml\": expected \"human\" or \"json\""),
        ("[alerts]\njsonl = true", "5:9: alerts.jsonl = true names no target: write \"-\" for stdout or a file path"),
        ("[alerts]\njsonl = 1", "5:9: expected \"-\", a file path or false for alerts.jsonl, got an integer"),
        ("[alerts]\njsonl = \"\"", "5:9: alerts.jsonl is an empty path"),
        ("[rules]\npaths = []", "5:9: rules.paths is empty: name at least one rule file or directory"),
        ("[rules]\npaths = [\"rules\", \" \"]", "5:19: rules.paths is an empty path"),
        ("[state]\nsave_interval_secs = 60", "4:1: missing required field \"path\" in [state]: the state file (or set KMSWATCH_STATE_PATH; without [state] nothing is kept across restarts)"),
    ];
    for (extra, want) in cases {
        let text = format!("{SOURCE}{extra}\n");
        assert_eq!(problems(&text, &[]), vec![want.to_string()], "{extra}");
    }
    let text =
        format!("shutdown_deadline_secs = 5\n{SOURCE}[service]\nshutdown_deadline_secs = 5\n");
    assert_eq!(
        problems(&text, &[]),
        vec![
            "6:26: shutdown_deadline_secs is set both at the top level and in [service]: keep one"
        ]
    );
}

#[test]
fn queue_urls_and_bucket_names_are_checked() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("\"sqs.us-east-1.amazonaws.com/1/q\"", "[\"trail-bucket\"]", "2:13: invalid source.queue_url \"sqs.us-east-1.amazonaws.com/1/q\": expected an http(s) URL like https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms"),
        ("\"arn:aws:sqs:us-east-1:123456789012:q\"", "[\"trail-bucket\"]", "2:13: invalid source.queue_url \"arn:aws:sqs:us-east-1:123456789012:q\": that is an ARN; expected an http(s) URL like https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms"),
        ("\"https://sqs.us-east-1.amazonaws.com/\"", "[\"trail-bucket\"]", "2:13: invalid source.queue_url \"https://sqs.us-east-1.amazonaws.com/\": no queue in the path; expected an http(s) URL like https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms"),
        ("\"https:///123/q\"", "[\"trail-bucket\"]", "2:13: invalid source.queue_url \"https:///123/q\": no host; expected an http(s) URL like https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms"),
        ("\"https://sqs.example.com/1/a q\"", "[\"trail-bucket\"]", "2:13: invalid source.queue_url \"https://sqs.example.com/1/a q\": a URL has no spaces; expected an http(s) URL like https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms"),
        ("\"http://localhost:4566/000000000000/q\"", "[\"Trail_Bucket\"]", "3:12: invalid bucket name \"Trail_Bucket\" in source.buckets: a bucket name holds only lowercase letters, digits, \".\" and \"-\""),
        ("\"http://localhost:4566/000000000000/q\"", "[\"ab\"]", "3:12: invalid bucket name \"ab\" in source.buckets: a bucket name is 3 to 63 characters long"),
        ("\"http://localhost:4566/000000000000/q\"", "[\"s3://trail-bucket\"]", "3:12: invalid bucket name \"s3://trail-bucket\" in source.buckets: give the bucket's name alone, like my-trail-bucket"),
        ("\"http://localhost:4566/000000000000/q\"", "[\"-trail\"]", "3:12: invalid bucket name \"-trail\" in source.buckets: a bucket name begins and ends with a letter or digit"),
        ("\"http://localhost:4566/000000000000/q\"", "[\"trail..logs\"]", "3:12: invalid bucket name \"trail..logs\" in source.buckets: a bucket name has no two adjacent periods"),
        ("\"http://localhost:4566/000000000000/q\"", "[\"192.168.1.10\"]", "3:12: invalid bucket name \"192.168.1.10\" in source.buckets: a bucket name is not an IP address"),
        ("\"http://localhost:4566/000000000000/q\"", "[\"abc\", \"abc\"]", "3:19: duplicate bucket \"abc\" in source.buckets: remove it"),
        ("\"http://localhost:4566/000000000000/q\"", "[]", "3:11: source.buckets is empty: name the bucket(s) the trail writes to"),
    ];
    for (queue, buckets, want) in cases {
        let text = format!("[source]\nqueue_url = {queue}\nbuckets = {buckets}\n");
        assert_eq!(
            problems(&text, &[]),
            vec![want.to_string()],
            "{queue} {buckets}"
        );
    }
}

#[test]
fn unknown_fields_are_reported_at_the_key_with_a_hint() {
    // Top-level keys come before the first table, tables after the required [source] values.
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("shutdown_deadline = 5\n", "1:1: unknown top-level field \"shutdown_deadline\" (did you mean \"shutdown_deadline_secs\"?)"),
        ("alerts = { jsonl = \"-\", webhooks = \"x\" }\n", "1:25: unknown field \"webhooks\" in [alerts] (did you mean \"webhook\"?)"),
        ("[sourec]\nx = 1\n", "4:2: unknown top-level field \"sourec\" (did you mean \"source\"?)"),
        ("[metric]\n", "4:2: unknown top-level field \"metric\" (did you mean \"metrics\"?)"),
        ("[zzz]\n", "4:2: unknown top-level field \"zzz\" (expected one of: source, engine, decode, rules, state, http, metrics, alerts, log, service, shutdown_deadline_secs)"),
        ("[engine]\nwindow = 60\n", "5:1: unknown field \"window\" in [engine] (did you mean \"window_secs\"?)"),
        ("[engine]\nmax_key = 1\n", "5:1: unknown field \"max_key\" in [engine] (did you mean \"max_keys\"?)"),
        ("[http]\n  address = \"127.0.0.1:1\"\n", "5:3: unknown field \"address\" in [http] (expected one of: listen, request_timeout_secs, max_concurrent_requests, max_alerts_per_page, api_token_env)"),
        ("[log]\nformat = \"json\"\nlevel = \"debug\"\n", "6:1: unknown field \"level\" in [log] (expected one of: format)"),
        ("[source.extra]\n", "4:9: unknown field \"extra\" in [source] (expected one of: queue_url, buckets, region, endpoint_url, receivers, max_messages_per_receive, wait_time_secs, visibility_timeout_secs, failed_message_visibility_secs, max_visibility_extension_secs, fetch_concurrency, max_messages_in_flight, max_attempts, retry_base_ms, retry_max_ms, queue_depth, close_windows_on_wall_clock)"),
    ];
    for (extra, want) in cases {
        let text = if extra.starts_with('[') {
            format!("{SOURCE}{extra}")
        } else {
            format!("{extra}{SOURCE}")
        };
        assert_eq!(problems(&text, &[]), vec![want.to_string()], "{extra}");
    }
    // Inside [source], after the required values.
    assert_eq!(
        problems(&format!("{SOURCE}recievers = 4\n"), &[]),
        vec!["4:1: unknown field \"recievers\" in [source] (did you mean \"receivers\"?)"]
    );
}

#[test]
fn values_of_the_wrong_type_are_reported_at_the_value() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("receivers = \"2\"", "4:13: expected an integer for source.receivers, got a string"),
        ("receivers = 2.5", "4:13: expected an integer for source.receivers, got a float"),
        ("receivers = 99999999999999999999", "4:13: source.receivers does not fit in a 64-bit integer"),
        ("close_windows_on_wall_clock = \"yes\"", "4:31: expected a boolean for source.close_windows_on_wall_clock, got a string"),
        ("region = 1", "4:10: expected a string for source.region, got an integer"),
        ("[rules]\npaths = \"rules\"", "5:9: expected an array for rules.paths, got a string"),
        ("[rules]\npaths = [\"a\", 3]", "5:15: expected a string in rules.paths, got an integer"),
        ("[engine]\nwindow_secs = [300]", "5:15: expected an integer for engine.window_secs, got an array"),
        ("[[http]]\nlisten = \"127.0.0.1:1\"", "4:1: expected a table for [http], got an array (write [http], not [[http]])"),
        // Not taken for [alerts], as serde would take a sequence of the fields.
        ("[[alerts]]", "4:1: expected a table for [alerts], got an array (write [alerts], not [[alerts]])"),
    ];
    for (extra, want) in cases {
        let text = format!("{SOURCE}{extra}\n");
        assert_eq!(problems(&text, &[]), vec![want.to_string()], "{extra}");
    }
    assert_eq!(
        problems(&format!("rules = [[\"a\"]]\n{SOURCE}"), &[]),
        vec!["1:9: expected a table for [rules], got an array (write [rules], not [[rules]])"]
    );
    assert_eq!(
        problems("engine = 3\n", &[]),
        vec![
            "1:1: missing required field \"queue_url\" in [source]: the URL of the SQS queue of the trail bucket's notifications (or set KMSWATCH_QUEUE_URL)",
            "1:1: missing required field \"buckets\" in [source]: the buckets the trail writes to (or set KMSWATCH_BUCKETS)",
            "1:10: expected a table for [engine], got an integer",
        ]
    );
}

#[test]
fn every_problem_of_a_file_is_reported_at_once_in_file_order() {
    let text = "\
shutdown_deadline_secs = 0
[source]
queue_url = 42
buckets = [\"Bad_Bucket\", \"good-bucket\"]
recievers = 3
fetch_concurrency = 1000
[engine]
window_secs = 0
allowed_lateness_secs = \"15m\"
max_keys =
[http]
listen = \"nowhere\"
[colour]
";
    assert_eq!(
        problems(text, &[]),
        vec![
            "1:26: shutdown_deadline_secs must be >= 1, got 0",
            "3:13: expected a string for source.queue_url, got an integer",
            "4:12: invalid bucket name \"Bad_Bucket\" in source.buckets: a bucket name holds only lowercase letters, digits, \".\" and \"-\"",
            "5:1: unknown field \"recievers\" in [source] (did you mean \"receivers\"?)",
            "6:21: source.fetch_concurrency must be between 1 and 256, got 1000",
            "8:15: engine.window_secs must be between 1 and 31622400, got 0",
            "9:25: expected an integer for engine.allowed_lateness_secs, got a string",
            "10:11: string values must be quoted, expected literal string",
            "12:10: invalid http.listen \"nowhere\": expected IP:PORT, like 127.0.0.1:9464, or 0.0.0.0:9464 for every interface (host names are not resolved)",
            "13:2: unknown top-level field \"colour\" (expected one of: source, engine, decode, rules, state, http, metrics, alerts, log, service, shutdown_deadline_secs)",
        ]
    );
}

#[test]
fn an_empty_file_needs_the_queue_and_buckets_from_somewhere() {
    assert_eq!(
        problems("", &[]),
        vec![
            "1:1: missing required field \"queue_url\" in [source]: the URL of the SQS queue of the trail bucket's notifications (or set KMSWATCH_QUEUE_URL)",
            "1:1: missing required field \"buckets\" in [source]: the buckets the trail writes to (or set KMSWATCH_BUCKETS)",
        ]
    );
    let c = ok(
        "",
        &[
            ("KMSWATCH_QUEUE_URL", QUEUE),
            ("KMSWATCH_BUCKETS", "trail-bucket"),
        ],
    );
    assert_same(&c, &defaults(QUEUE, "trail-bucket"));
}

#[test]
fn environment_overrides_replace_the_file() {
    let text = format!("{SOURCE}region = \"eu-west-1\"\n[log]\nformat = \"json\"\n");
    let c = ok(
        &text,
        &[
            (
                "KMSWATCH_QUEUE_URL",
                "http://localhost:4566/000000000000/trail",
            ),
            ("KMSWATCH_BUCKETS", " org-trail , other.trail,"),
            ("KMSWATCH_REGION", "us-west-2"),
            ("KMSWATCH_ENDPOINT_URL", "http://localhost:4566"),
            ("KMSWATCH_STATE_PATH", "state/kmswatch.json"),
            ("KMSWATCH_LISTEN", "[::]:9000"),
            ("KMSWATCH_LOG_FORMAT", "human"),
        ],
    );
    assert_eq!(
        c.source.queue_url,
        "http://localhost:4566/000000000000/trail"
    );
    assert_eq!(c.source.buckets, ["org-trail", "other.trail"]);
    assert_eq!(c.source.region.as_deref(), Some("us-west-2"));
    assert_eq!(
        c.source.endpoint_url.as_deref(),
        Some("http://localhost:4566")
    );
    // A path from the environment is used as given, not resolved against the file's directory;
    // it enables durable state without a [state] table.
    assert_eq!(
        c.state,
        Some(StateConfig::new(PathBuf::from("state/kmswatch.json")))
    );
    assert_eq!(c.http.listen, "[::]:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(c.log.format, LogFormat::Human);
}

#[test]
fn an_override_replaces_a_bad_value_in_the_file() {
    let text = "[source]\nqueue_url = \"TODO\"\nbuckets = [\"TODO\"]\n";
    let c = ok(
        text,
        &[
            ("KMSWATCH_QUEUE_URL", QUEUE),
            ("KMSWATCH_BUCKETS", "trail-bucket"),
        ],
    );
    assert_same(&c, &defaults(QUEUE, "trail-bucket"));
}

#[test]
fn bad_environment_values_are_reported_naming_the_variable() {
    let vars = [
        ("KMSWATCH_QUEUE_URL", "my-queue"),
        ("KMSWATCH_BUCKETS", "good-bucket,Bad Bucket"),
        ("KMSWATCH_REGION", ""),
        ("KMSWATCH_ENDPOINT_URL", "localhost"),
        ("KMSWATCH_STATE_PATH", ""),
        ("KMSWATCH_LISTEN", "9464"),
        ("KMSWATCH_LOG_FORMAT", "JSON"),
    ];
    assert_eq!(
        problems(&format!("{SOURCE}recievers = 1\n"), &vars),
        vec![
            "4:1: unknown field \"recievers\" in [source] (did you mean \"receivers\"?)",
            "$KMSWATCH_QUEUE_URL: invalid source.queue_url \"my-queue\": expected an http(s) URL like https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms",
            "$KMSWATCH_BUCKETS: invalid bucket name \"Bad Bucket\" in source.buckets: a bucket name holds only lowercase letters, digits, \".\" and \"-\"",
            "$KMSWATCH_REGION: invalid source.region \"\": expected a region code like us-east-1",
            "$KMSWATCH_ENDPOINT_URL: invalid source.endpoint_url \"localhost\": expected an http(s) URL like http://localhost:4566",
            "$KMSWATCH_STATE_PATH: state.path is an empty path",
            "$KMSWATCH_LISTEN: invalid http.listen \"9464\": expected IP:PORT, like 127.0.0.1:9464, or 0.0.0.0:9464 for every interface (host names are not resolved)",
            "$KMSWATCH_LOG_FORMAT: invalid log.format \"JSON\": expected \"human\" or \"json\"",
        ]
    );
    assert_eq!(
        problems(SOURCE, &[("KMSWATCH_BUCKETS", " , ")]),
        vec!["$KMSWATCH_BUCKETS: source.buckets is empty: give a comma-separated list of bucket names"]
    );
}

#[test]
fn relative_paths_in_the_file_resolve_against_its_directory() {
    let text = format!(
        "{SOURCE}[rules]\npaths = [\"rules\", \"../shared/rules.toml\", \"/opt/rules\"]\n\
         [state]\npath = \"state/kmswatch.json\"\nsave_interval_secs = 5\n\
         [alerts]\njsonl = \"alerts.jsonl\"\n"
    );
    let c = ok(&text, &[]);
    assert_eq!(
        c.rules,
        [
            PathBuf::from("/etc/kmswatch/rules"),
            PathBuf::from("/etc/kmswatch/../shared/rules.toml"),
            PathBuf::from("/opt/rules"),
        ]
    );
    assert_eq!(
        c.state,
        Some(StateConfig {
            path: PathBuf::from("/etc/kmswatch/state/kmswatch.json"),
            save_interval_secs: 5,
            ..StateConfig::new(PathBuf::new())
        })
    );
    assert_eq!(
        c.alerts.jsonl,
        Some(JsonlTarget::File(PathBuf::from(
            "/etc/kmswatch/alerts.jsonl"
        )))
    );
    // A file named without a directory: paths stay relative to the current directory.
    let c = parse(&text, Path::new("kmswatch.toml"), &|_| None).unwrap();
    assert_eq!(c.rules[0], PathBuf::from("rules"));
    assert_eq!(c.state.unwrap().path, PathBuf::from("state/kmswatch.json"));
}

#[test]
fn other_accepted_forms() {
    let text = format!(
        "shutdown_deadline_secs = 5\n{SOURCE}[alerts]\njsonl = false\n[http]\nlisten = \"0.0.0.0:80\"\n"
    );
    let c = ok(&text, &[]);
    assert_eq!(c.shutdown_deadline_secs, 5);
    assert_eq!(c.alerts.jsonl, None);
    assert_eq!(c.http.listen, "0.0.0.0:80".parse::<SocketAddr>().unwrap());
    let c = ok(
        &format!("{SOURCE}[service]\nshutdown_deadline_secs = 7\n"),
        &[],
    );
    assert_eq!(c.shutdown_deadline_secs, 7);
    // Inline and dotted tables are tables.
    let c = ok(
        &format!("engine = {{ window_secs = 60 }}\ndecode.max_object_bytes = 1024\n{SOURCE}"),
        &[],
    );
    assert_eq!(
        (c.engine.window_secs, c.decode.max_object_bytes),
        (60, 1024)
    );
}

#[test]
fn the_error_lists_every_problem_then_a_count() {
    let e = parse_with("[source]\nqueue_url = 1\n", &[("KMSWATCH_LISTEN", "x")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{ORIGIN}:1:1: missing required field \"buckets\" in [source]: the buckets the trail writes to (or set KMSWATCH_BUCKETS)\n\
             {ORIGIN}:2:13: expected a string for source.queue_url, got an integer\n\
             $KMSWATCH_LISTEN: invalid http.listen \"x\": expected IP:PORT, like 127.0.0.1:9464, or 0.0.0.0:9464 for every interface (host names are not resolved)\n\
             3 problem(s) in configuration {ORIGIN}"
        )
    );
    // The rule paths are valid, so a check can go on to the rules.
    assert_eq!(e.rules, [PathBuf::from("/etc/kmswatch/rules")]);
}

#[test]
fn load_reports_a_missing_file_at_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let e = load(&path).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    let s = e.problems[0].to_string();
    assert!(
        s.starts_with(&format!(
            "{}:1:1: cannot read configuration file: ",
            path.display()
        )),
        "{s}"
    );
}

#[test]
fn alert_sinks_are_read_with_secrets_from_the_environment() {
    let text = format!(
        "{SOURCE}[alerts]\njsonl = false\nmax_attempts = 3\nretry_base_ms = 10\nretry_max_ms = 20\n\
         [alerts.alertmanager]\nurls = [\"http://am-0:9093/\", \"https://am-1.example.com/prefix\"]\n\
         resend_interval_secs = 30\nlink_template = \"https://x/{{event_id}}\"\n\
         [[alerts.webhook]]\nurl = \"https://soar.example.com/hook\"\nsecret_env = \"HOOK_KEY\"\n\
         token_env = \"HOOK_TOKEN\"\ntimeout_secs = 3\n\
         [[alerts.webhook]]\nurl = \"http://127.0.0.1:8080/\"\nqueue_capacity = 5\n"
    );
    let c = ok(&text, &[("HOOK_KEY", "k3y"), ("HOOK_TOKEN", "t0ken")]);
    let a = &c.alerts;
    assert_eq!(a.jsonl, None);
    assert_eq!(
        a.retry,
        crate::retry::RetryPolicy {
            max_attempts: 3,
            base_ms: 10,
            max_ms: 20
        }
    );
    let am = a.alertmanager.as_ref().unwrap();
    assert_eq!(
        am.urls,
        ["http://am-0:9093", "https://am-1.example.com/prefix"]
    );
    assert_eq!((am.resend_interval_secs, am.timeout_secs), (30, 10));
    assert_eq!(
        am.link_template,
        Some(crate::sinks::LinkTemplate::parse("https://x/{event_id}").unwrap())
    );
    assert_eq!(a.webhooks.len(), 2);
    let w = &a.webhooks[0];
    assert_eq!(w.url, "https://soar.example.com/hook");
    assert_eq!(w.secret.as_ref().map(Secret::expose), Some("k3y"));
    assert_eq!(w.token.as_ref().map(Secret::expose), Some("t0ken"));
    assert_eq!((w.timeout_secs, w.queue_capacity), (3, 1024));
    // Secrets do not show in the configuration's debug output.
    assert!(!format!("{c:?}").contains("k3y"));
    let mut second = WebhookConfig::new("http://127.0.0.1:8080/");
    second.queue_capacity = 5;
    assert_eq!(a.webhooks[1], second);

    // The environment alone enables Alertmanager.
    let c = ok(
        SOURCE,
        &[(
            "KMSWATCH_ALERTMANAGER_URLS",
            " http://a:9093, http://b:9093 ,",
        )],
    );
    let mut want = AlertmanagerConfig::new(vec!["http://a:9093".into(), "http://b:9093".into()]);
    want.resend_interval_secs = 60;
    assert_eq!(c.alerts.alertmanager, Some(want));
}

#[test]
fn each_alert_sink_problem_is_reported_at_once() {
    let text = "\
[source]
queue_url = \"https://sqs.us-east-1.amazonaws.com/123456789012/q\"
buckets = [\"trail-bucket\"]
[alerts]
jsonl_queue_capacity = 0
retry_base_ms = 100
retry_max_ms = 50
[alerts.alertmanager]
urls = [\"alertmanager:9093\", \"http://a:9093\", \"http://a:9093/\", \"http://u:p@b:9093\"]
resend_interval_secs = 0
timeout_secs = 301
max_alerts_per_post = 0
link_template = \"https://x/{keyid}\"
[[alerts.webhook]]
secret_env = \"UNSET_KEY\"
token_env = \"not a name\"
[[alerts.webhook]]
url = \"https://h/\"
secret_env = \"EMPTY_KEY\"
queue_capacity = 0
urll = \"x\"
[[alerts.webhook]]
url = 7
";
    assert_eq!(
        problems(text, &[("EMPTY_KEY", " ")]),
        vec![
            "5:24: alerts.jsonl_queue_capacity must be between 1 and 1000000, got 0",
            "7:16: alerts.retry_max_ms (50) must be >= alerts.retry_base_ms (100): raise retry_max_ms or lower retry_base_ms",
            "9:9: invalid alerts.alertmanager.urls \"alertmanager:9093\": expected an http(s) URL like http://alertmanager:9093",
            "9:47: duplicate URL \"http://a:9093\" in alerts.alertmanager.urls: remove it",
            "9:65: invalid alerts.alertmanager.urls \"http://u:p@b:9093\": credentials in the URL are not supported; use token_env for a bearer token",
            "10:24: alerts.alertmanager.resend_interval_secs must be between 1 and 3600, got 0",
            "11:16: alerts.alertmanager.timeout_secs must be between 1 and 300, got 301",
            "12:23: alerts.alertmanager.max_alerts_per_post must be between 1 and 10000, got 0",
            "13:17: invalid alerts.alertmanager.link_template \"https://x/{keyid}\": unknown placeholder {keyid}; known: {rule}, {severity}, {key}, {principal}, {service}, {account}, {region}, {operation}, {error}, {event_id}, {window_start}, {window_end}",
            "14:1: missing required field \"url\" in [[alerts.webhook]] number 1: where to POST alerts, like https://soar.example.com/hooks/kmswatch",
            "15:14: alerts.webhook[0].secret_env: the environment variable UNSET_KEY is not set: put the HMAC-SHA256 key in it, or remove secret_env",
            "16:13: invalid alerts.webhook[0].token_env \"not a name\": expected the name of an environment variable, like KMSWATCH_WEBHOOK_SECRET (the secret itself does not belong in the file)",
            "19:14: alerts.webhook[1].secret_env: the environment variable EMPTY_KEY is empty: put the HMAC-SHA256 key in it, or remove secret_env",
            "20:18: alerts.webhook[1].queue_capacity must be between 1 and 1000000, got 0",
            "21:1: unknown field \"urll\" in [[alerts.webhook]] (did you mean \"url\"?)",
            "23:7: expected a string for alerts.webhook[2].url, got an integer",
        ]
    );
}

#[test]
fn alert_sink_tables_must_have_their_shape() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("[alerts.webhook]\nurl = \"https://h/\"", "4:1: expected an array of tables for [[alerts.webhook]], got a table (write [[alerts.webhook]], not [alerts.webhook])"),
        ("[alerts]\nwebhook = \"https://h/\"", "5:11: expected an array of tables for [[alerts.webhook]], got a string"),
        ("[[alerts.alertmanager]]\nurls = [\"http://a:9093\"]", "4:1: expected a table for [alerts.alertmanager], got an array (write [alerts.alertmanager], not [[alerts.alertmanager]])"),
        ("[alerts.alertmanager]\nurls = []", "5:8: alerts.alertmanager.urls is empty: name at least one Alertmanager, like http://alertmanager:9093 (or remove [alerts.alertmanager])"),
        ("[alerts.alertmanager]\ntimeout_secs = 5", "4:1: missing required field \"urls\" in [alerts.alertmanager]: the base URL of each Alertmanager, like http://alertmanager:9093 (or set KMSWATCH_ALERTMANAGER_URLS)"),
        ("[alerts.alertmanager]\nurls = \"http://a:9093\"", "5:8: expected an array for alerts.alertmanager.urls, got a string"),
    ];
    for (extra, want) in cases {
        let text = format!("{SOURCE}{extra}\n");
        assert_eq!(problems(&text, &[]), vec![want.to_string()], "{extra}");
    }
    assert_eq!(
        problems(SOURCE, &[("KMSWATCH_ALERTMANAGER_URLS", ",")]),
        vec!["$KMSWATCH_ALERTMANAGER_URLS: alerts.alertmanager.urls is empty: give a comma-separated list of Alertmanager URLs"]
    );
}

#[test]
fn http_limits_and_the_api_token_come_from_the_file_and_the_environment() {
    let text = format!(
        "{SOURCE}[http]\nrequest_timeout_secs = 5\nmax_concurrent_requests = 8\nmax_alerts_per_page = 10\napi_token_env = \"API_TOKEN\"\n"
    );
    let c = ok(&text, &[("API_TOKEN", "t0ken")]);
    assert_eq!(c.http.request_timeout_secs, 5);
    assert_eq!(c.http.max_concurrent_requests, 8);
    assert_eq!(c.http.max_alerts_per_page, 10);
    assert_eq!(c.http.api_token.as_ref().map(|t| t.expose()), Some("t0ken"));
    assert_eq!(
        problems(&text, &[]),
        vec!["8:17: http.api_token_env: the environment variable API_TOKEN is not set: put the bearer token in it, or remove api_token_env"]
    );
    let bad = format!("{SOURCE}[http]\nmax_concurrent_requests = 0\n");
    assert_eq!(
        problems(&bad, &[]),
        vec!["5:27: http.max_concurrent_requests must be between 1 and 10000, got 0"]
    );
}
