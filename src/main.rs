//! The `kmswatch` command line: parses arguments and calls the library.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use indicatif::{ProgressBar, ProgressStyle};
use kmswatch::alerts::JsonLinesSink;
use kmswatch::config::MAX_SPAN_SECS;
use kmswatch::decode::DecodeLimits;
use kmswatch::engine::EngineConfig;
use kmswatch::generate::{generate, GenerateOptions, Profile};
use kmswatch::replay::{replay, Input, ReplayOptions, S3Options};
use kmswatch::report::{AlertLog, AuditReport, InputStats, ReportMeta, Summary};
use kmswatch::rules::{
    load_paths, load_source, resolve, EvalLimits, LoadError, RuleSet, RuleSource,
};
use kmswatch::sources::Selection;
use kmswatch::state;

#[derive(Parser)]
#[command(
    name = "kmswatch",
    version,
    about = "Audit analytics and anomaly detection for AWS KMS usage in CloudTrail"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replays CloudTrail log files (directories are walked recursively) through the rules.
    Replay(Box<ReplayArgs>),
    /// Rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Writes generated CloudTrail logs (the sample set, or a benchmark set).
    Generate(GenerateArgs),
    /// State files (`replay --state-out`, the service's `--state`).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// The configuration of `kmswatch serve`.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Runs the live service: SQS notifications, S3 objects, metrics on HTTP, alerts.
    Serve(ServeArgs),
    /// Writes the auditors' report of a state file: the tables `replay --report` writes, with
    /// `alerts` holding the alerts firing when the state was saved; coverage of objects read is
    /// not in a state file.
    Report {
        /// The state file (`replay --state-out`, the service's `--state`).
        state: PathBuf,
        /// The report directory (created if missing; files of the same names are replaced).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// The configuration file (see kmswatch.example.toml).
    #[arg(long)]
    config: PathBuf,
    /// The state file to continue from and save to (overrides `[state] path`); a file written by
    /// `kmswatch replay --state-out` warms the service with history.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Log JSON lines instead of human-readable text (overrides `[log] format`).
    #[arg(long)]
    log_json: bool,
}

#[derive(Subcommand)]
enum StateCommand {
    /// Writes the summary JSON (as `replay --summary` does) of a state file; input stats are empty.
    Summary {
        /// The state file.
        file: PathBuf,
        /// Write the summary here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Writes the whole state as pretty JSON, for people and scripts; it cannot be loaded back
    /// (state files are binary).
    Dump {
        /// The state file.
        file: PathBuf,
        /// Write the JSON here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Checks rule files and reports every problem with file:line:col.
    Check {
        /// Rule files or directories of `*.toml` files (default: ./rules, else the built-in rules).
        paths: Vec<PathBuf>,
    },
    /// Lists the rules a replay would use, and where they come from.
    List {
        /// Rule files or directories (default: ./rules, else the built-in rules).
        #[arg(long)]
        rules: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Checks a configuration file, with the KMSWATCH_* environment overrides, and the rules it
    /// names; reports every problem with file:line:col.
    Check {
        /// The configuration file (see kmswatch.example.toml).
        path: PathBuf,
    },
}

#[derive(Args)]
struct ReplayArgs {
    /// Directories, files, or S3 prefixes (`s3://bucket/AWSLogs/o-abc123/`) to replay.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// First event time included: `2026-01-01` (midnight UTC) or RFC 3339.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// First event time excluded: RFC 3339, or a date for the end of that day (`--to 2026-03-31`
    /// includes March 31).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Only the log files of these accounts (comma-separated 12-digit ids).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    accounts: Vec<String>,
    /// Only the log files of these regions (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    regions: Vec<String>,
    /// S3 objects fetched, and listings made, at once.
    #[arg(long, default_value_t = 16)]
    fetch_concurrency: usize,
    /// Keys per S3 listing page (1 to 1000, S3's maximum).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000))]
    list_page_size: i32,
    /// S3 endpoint (overrides `AWS_ENDPOINT_URL`; for moto, LocalStack, MinIO).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// AWS region of the S3 client (default: the SDK's chain, e.g. `AWS_REGION`).
    #[arg(long)]
    region: Option<String>,
    /// Rule files or directories (default: ./rules when it exists, else the built-in rules).
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Write alerts (JSON lines) here instead of stdout.
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Write the summary with per-key totals as JSON here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Continue from this state file instead of an empty engine.
    #[arg(long, value_name = "FILE")]
    state_in: Option<PathBuf>,
    /// Write the engine state here after the last object (before the end-of-input close), for
    /// the service or a later `--state-in` to continue from.
    #[arg(long, value_name = "FILE")]
    state_out: Option<PathBuf>,
    /// Default window length of windowed rules.
    #[arg(long, default_value_t = 300)]
    window_secs: i64,
    /// How far the watermark trails the latest event time.
    #[arg(long, default_value_t = 900)]
    allowed_lateness_secs: i64,
    /// How far an event may be later than its file's delivery time (from the name); later events
    /// are counted as future events and not folded.
    #[arg(long, default_value_t = 3600)]
    future_skew_secs: i64,
    /// The engine's limits, as `serve` has them in [engine]: give the service's values to
    /// reproduce its verdicts.
    #[command(flatten)]
    limits: EngineLimitArgs,
    /// Largest decompressed object accepted.
    #[arg(long, default_value_t = 512 << 20)]
    max_object_bytes: usize,
    /// Most records accepted in one object.
    #[arg(long, default_value_t = 1_000_000)]
    max_records_per_object: usize,
    /// Decoding threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not print the summary or a progress bar on stderr.
    #[arg(long)]
    quiet: bool,
    /// Write the auditors' report here: tables as Parquet and CSV, report.md, manifest.json.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

/// `[engine]` settings of `serve` beyond windows and lateness (defaults: the service's).
#[derive(Args)]
struct EngineLimitArgs {
    /// How long folded objects are remembered for dedupe behind the watermark (an object seen
    /// again is skipped whole).
    #[arg(long, default_value_t = EngineConfig::default().dedupe_horizon_secs)]
    dedupe_horizon_secs: i64,
    /// How long call ids are remembered for dedupe behind the watermark (>= the lateness).
    #[arg(long, default_value_t = EngineConfig::default().dedupe_id_horizon_secs)]
    dedupe_id_horizon_secs: i64,
    /// Most folded objects remembered for dedupe.
    #[arg(long, default_value_t = EngineConfig::default().max_dedupe_objects, value_parser = at_least_one)]
    max_dedupe_objects: usize,
    /// Most call ids remembered for dedupe.
    #[arg(long, default_value_t = EngineConfig::default().max_dedupe_ids, value_parser = at_least_one)]
    max_dedupe_ids: usize,
    /// Most keys in the key catalogue.
    #[arg(long, default_value_t = EngineConfig::default().max_keys, value_parser = at_least_one)]
    max_keys: usize,
    /// Most aliases in the key catalogue.
    #[arg(long, default_value_t = EngineConfig::default().max_aliases, value_parser = at_least_one)]
    max_aliases: usize,
    /// Most groups one rule tracks at once.
    #[arg(long, default_value_t = EngineConfig::default().limits.max_groups_per_rule, value_parser = at_least_one)]
    max_groups_per_rule: usize,
    /// Most principals remembered per key by new-principal rules.
    #[arg(long, default_value_t = EngineConfig::default().limits.max_principals_per_key, value_parser = at_least_one)]
    max_principals_per_key: usize,
    /// Most rows of each per-key total table.
    #[arg(long, default_value_t = EngineConfig::default().max_report_rows, value_parser = at_least_one)]
    max_report_rows: usize,
}

/// A limit: a whole number >= 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be >= 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Sample,
    Bench,
    Scale,
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long, value_enum, default_value = "sample")]
    profile: ProfileArg,
    /// Output directory (files in it are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the generator; the default reproduces the committed sample-logs/ byte for byte.
    #[arg(long, default_value_t = kmswatch::generate::DEFAULT_SEED)]
    seed: u64,
    /// Bench profile: uncompressed size to reach, in MB.
    #[arg(long, default_value_t = 600)]
    size_mb: u64,
    /// Bench profile: days the events span, from 2026-03-01.
    #[arg(long, default_value_t = 7)]
    days: i64,
    /// Scale profile: keys, each called by every principal.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Scale profile: role principals.
    #[arg(long, default_value_t = 100)]
    principals: u64,
    /// Scale profile: calls per key and principal (over that many times 50 minutes).
    #[arg(long, default_value_t = 1)]
    repeat: u64,
    /// Scale profile: failed calls, each from a made-up principal on a made-up key.
    #[arg(long, default_value_t = 0)]
    attack: u64,
}

/// mimalloc, tuned by [`kmswatch::alloc::tune`] (which says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    kmswatch::alloc::tune();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => run_replay(*args),
        Command::Serve(args) => run_serve(args),
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => {
            let source = resolve(&paths)?;
            Ok(match load_source(&source) {
                Ok(set) => {
                    println!("{} rules OK in {source}", set.rules.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    print_problems(&e);
                    ExitCode::FAILURE
                }
            })
        }
        Command::Rules {
            command: RulesCommand::List { rules },
        } => {
            let (set, source) = active_rules(&rules)?;
            println!("{} rules from {source}", set.rules.len());
            let rows: Vec<[String; 4]> = set
                .rules
                .iter()
                .map(|r| {
                    [
                        r.id.clone(),
                        r.kind.name().to_owned(),
                        r.severity.as_str().to_owned(),
                        r.origin.to_string(),
                    ]
                })
                .collect();
            print_table(&["RULE", "KIND", "SEVERITY", "DEFINED AT"], &rows);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check { path },
        } => Ok(check_config(&path)),
        Command::Generate(args) => {
            let profile = match args.profile {
                ProfileArg::Sample => Profile::Sample,
                ProfileArg::Bench => Profile::Bench {
                    target_bytes: args.size_mb * 1_000_000,
                    span_days: args.days,
                },
                ProfileArg::Scale => Profile::Scale(kmswatch::generate::ScaleShape {
                    keys: args.keys,
                    principals: args.principals,
                    repeat: args.repeat,
                    attack: args.attack,
                }),
            };
            let report = generate(&GenerateOptions {
                out: args.out.clone(),
                profile,
                seed: args.seed,
            })
            .with_context(|| format!("generating into {}", args.out.display()))?;
            eprintln!(
                "wrote {} files to {}: {} records ({} KMS), {:.1} MB JSON, {:.1} MB gzip",
                report.files,
                args.out.display(),
                report.records,
                report.kms_records,
                report.uncompressed_bytes as f64 / 1e6,
                report.compressed_bytes as f64 / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { state, out } => {
            let meta = ReportMeta {
                inputs: vec![state.display().to_string()],
                ..ReportMeta::default()
            };
            let state = state::load(&state)?;
            note_journal(&state)?;
            AuditReport::from_state(&state, meta).write(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::State {
            command: StateCommand::Summary { file, out },
        } => {
            let state = state::load(&file)?;
            note_journal(&state)?;
            let input = InputStats::default();
            write_json(out.as_deref(), &Summary::from_state(&input, &state))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::State {
            command: StateCommand::Dump { file, out },
        } => {
            let state = state::load(&file)?;
            note_journal(&state)?;
            write_json(out.as_deref(), &state)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Says on stderr when a state file shown alone has journal deltas after it.
fn note_journal(state: &state::EngineState) -> Result<()> {
    if let Some(note) = state::journal::pending_note(state)? {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// Pretty JSON and a newline, to `path` or stdout.
fn write_json(path: Option<&Path>, value: &impl serde::Serialize) -> Result<()> {
    let out: Box<dyn Write> = match path {
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let mut w = BufWriter::new(out);
    let name = path.map_or("stdout".into(), |p| p.display().to_string());
    serde_json::to_writer_pretty(&mut w, value).with_context(|| format!("writing {name}"))?;
    w.write_all(b"\n")?;
    w.flush().with_context(|| format!("writing {name}"))
}

/// Prints every problem of the configuration and of the rules it names; one line when all is well.
fn check_config(path: &Path) -> ExitCode {
    let (config, rule_paths) = match kmswatch::config::load(path) {
        Ok(config) => {
            let rules = config.rules.clone();
            (Some(config), rules)
        }
        Err(e) => {
            eprintln!("{e}");
            (None, e.rules)
        }
    };
    let rules = if rule_paths.is_empty() {
        None
    } else {
        load_rules(&rule_paths).map_err(|e| print_problems(&e)).ok()
    };
    let (Some(config), Some(rules)) = (config, rules) else {
        return ExitCode::FAILURE;
    };
    let state = config
        .state
        .as_ref()
        .map_or("no durable state".to_string(), |s| {
            format!("state in {}", s.path.display())
        });
    println!(
        "{} OK: queue {}, {} bucket(s), {} rules from {}, http on {}, {}, alerts to {}",
        path.display(),
        config.source.queue_url,
        config.source.buckets.len(),
        rules.rules.len(),
        display_paths(&config.rules),
        config.http.listen,
        state,
        alert_sinks(&config.alerts)
    );
    ExitCode::SUCCESS
}

/// `stdout`, `alerts.jsonl + 2 Alertmanager(s) + 1 webhook(s)`, or `nowhere`.
fn alert_sinks(a: &kmswatch::config::AlertsConfig) -> String {
    let mut sinks = Vec::new();
    match &a.jsonl {
        Some(kmswatch::config::JsonlTarget::Stdout) => sinks.push("stdout".to_string()),
        Some(kmswatch::config::JsonlTarget::File(p)) => sinks.push(p.display().to_string()),
        None => {}
    }
    if let Some(am) = &a.alertmanager {
        sinks.push(format!("{} Alertmanager(s)", am.urls.len()));
    }
    if !a.webhooks.is_empty() {
        sinks.push(format!("{} webhook(s)", a.webhooks.len()));
    }
    if sinks.is_empty() {
        "nowhere".to_string()
    } else {
        sinks.join(" + ")
    }
}

fn run_serve(args: ServeArgs) -> Result<ExitCode> {
    let mut config = match kmswatch::config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(path) = args.state {
        match &mut config.state {
            Some(s) => s.path = path,
            None => config.state = Some(kmswatch::config::StateConfig::new(path)),
        }
    }
    init_tracing(args.log_json || config.log.format == kmswatch::config::LogFormat::Json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(kmswatch::serve::run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr; the level comes from `RUST_LOG` (default: info, with the AWS SDK at warn).
fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn,aws_sdk_sqs=warn",
        )
    });
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr);
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn load_rules(paths: &[PathBuf]) -> Result<RuleSet, LoadError> {
    load_paths(paths)
}

fn print_problems(e: &LoadError) {
    for p in &e.problems {
        eprintln!("{p}");
    }
    eprintln!("{e}");
}

/// The rules of a command: `given`, else ./rules, else the built-in ones; every problem printed.
fn active_rules(given: &[PathBuf]) -> Result<(RuleSet, RuleSource)> {
    let source = resolve(given)?;
    match load_source(&source) {
        Ok(set) => Ok((set, source)),
        Err(e) => {
            print_problems(&e);
            anyhow::bail!("rules in {source} are invalid");
        }
    }
}

/// Left-aligned columns, two spaces apart.
fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut width = header.map(str::len);
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn run_replay(args: ReplayArgs) -> Result<ExitCode> {
    let (rules, _) = active_rules(&args.rules)?;
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up the thread pool")?;
    }
    anyhow::ensure!(args.window_secs > 0, "--window-secs must be > 0");
    anyhow::ensure!(
        args.allowed_lateness_secs >= 0,
        "--allowed-lateness-secs must be >= 0"
    );
    anyhow::ensure!(
        args.future_skew_secs >= 0,
        "--future-skew-secs must be >= 0"
    );
    let l = &args.limits;
    for (flag, secs) in [
        ("--dedupe-horizon-secs", l.dedupe_horizon_secs),
        ("--dedupe-id-horizon-secs", l.dedupe_id_horizon_secs),
    ] {
        anyhow::ensure!(
            (0..=MAX_SPAN_SECS).contains(&secs),
            "{flag} must be between 0 and {MAX_SPAN_SECS}, got {secs}"
        );
    }
    anyhow::ensure!(
        l.dedupe_id_horizon_secs >= args.allowed_lateness_secs,
        "--dedupe-id-horizon-secs ({}) must be >= --allowed-lateness-secs ({}): late calls must still be recognised as duplicates",
        l.dedupe_id_horizon_secs,
        args.allowed_lateness_secs
    );
    let inputs = args
        .inputs
        .iter()
        .map(|s| Input::parse(s).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let selection = selection(&args)?;
    let progress = if args.quiet || !io::IsTerminal::is_terminal(&io::stderr()) {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({binary_bytes_per_sec}, ETA {eta})",
            )
            .context("progress bar template")?,
        );
        bar.set_message("0 objects");
        bar
    };
    let opts = ReplayOptions {
        inputs,
        selection,
        s3: S3Options {
            endpoint_url: args.endpoint_url.clone(),
            region: args.region.clone(),
            concurrency: args.fetch_concurrency.max(1),
            list_page_size: args.list_page_size,
            ..S3Options::default()
        },
        progress,
        engine: EngineConfig {
            window_secs: args.window_secs,
            allowed_lateness_secs: args.allowed_lateness_secs,
            future_skew_secs: args.future_skew_secs,
            dedupe_horizon_secs: l.dedupe_horizon_secs,
            dedupe_id_horizon_secs: l.dedupe_id_horizon_secs,
            max_dedupe_objects: l.max_dedupe_objects,
            max_dedupe_ids: l.max_dedupe_ids,
            max_keys: l.max_keys,
            max_aliases: l.max_aliases,
            limits: EvalLimits {
                max_groups_per_rule: l.max_groups_per_rule,
                max_principals_per_key: l.max_principals_per_key,
            },
            max_report_rows: l.max_report_rows,
        },
        decode: DecodeLimits {
            max_object_bytes: args.max_object_bytes,
            max_records_per_object: args.max_records_per_object,
        },
        state_in: args.state_in.clone(),
        state_out: args.state_out.clone(),
        ..ReplayOptions::default()
    };
    let out: Box<dyn Write> = match &args.alerts {
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let mut sink = JsonLinesSink::new(BufWriter::new(out));
    let mut alert_log = AlertLog::new(opts.engine.max_report_rows);
    let result = replay(&opts, rules, |a| {
        if args.report.is_some() {
            alert_log.push(a);
        }
        sink.write(a)
    })?;
    sink.flush().context("writing alerts")?;
    for note in &result.notes {
        eprintln!("note: {note}");
    }
    for note in kmswatch::engine::limits::notes(&result.engine.over_limits(), &opts.engine) {
        eprintln!("note: {note}");
    }
    // The summary's tables hold a row per key: made once, only when written, and dropped before
    // the report is made.
    let summary = (args.summary.is_some() || !args.quiet).then(|| result.summary());
    if let (Some(p), Some(summary)) = (&args.summary, &summary) {
        write_json(Some(p), summary)?;
    }
    let text = summary.filter(|_| !args.quiet).map(|s| s.render_text());
    if let Some(dir) = &args.report {
        let meta = ReportMeta {
            range_from: opts.selection.from,
            range_to: opts.selection.to,
            inputs: args.inputs.clone(),
        };
        AuditReport::from_engine(&result.engine, &result.input, &alert_log, meta).write(dir)?;
    }
    if let Some(text) = text {
        eprint!("{text}");
        if let Some(l) = result.listing {
            eprintln!(
                "S3: {} objects listed in {} requests, {} folders pruned by the selection",
                l.objects_listed, l.requests, l.prefixes_pruned
            );
        }
    }
    if result.input.log_objects == 0 {
        eprintln!("warning: no log files found in {}", args.inputs.join(", "));
    }
    Ok(if result.had_failures() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The `--from/--to/--accounts/--regions` of a replay.
fn selection(args: &ReplayArgs) -> Result<Selection> {
    let from = args
        .from
        .as_deref()
        .map(|s| time_bound(s, false).with_context(|| format!("--from {s}")))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|s| time_bound(s, true).with_context(|| format!("--to {s}")))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        anyhow::ensure!(f < t, "--from must be before --to");
    }
    for a in &args.accounts {
        anyhow::ensure!(
            a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()),
            "--accounts: {a:?} is not a 12-digit account id"
        );
    }
    for r in &args.regions {
        anyhow::ensure!(
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "--regions: {r:?} is not a region name (like us-east-1)"
        );
    }
    let set = |v: &[String]| (!v.is_empty()).then(|| v.iter().cloned().collect());
    Ok(Selection {
        from,
        to,
        accounts: set(&args.accounts),
        regions: set(&args.regions),
    })
}

/// `2026-03-01` (midnight UTC; with `end_of_day`, the midnight after) or an RFC 3339 time.
fn time_bound(s: &str, end_of_day: bool) -> Result<i64> {
    let date = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date) {
        let midnight = d.midnight().assume_utc().unix_timestamp();
        return Ok(midnight + if end_of_day { 86_400 } else { 0 });
    }
    kmswatch::timefmt::parse_event_time(s).ok_or_else(|| {
        anyhow::anyhow!("expected a date (2026-03-01) or an RFC 3339 time (2026-03-01T00:00:00Z)")
    })
}
