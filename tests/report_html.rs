//! The HTML report of `sample-logs/` in a real browser: headless Chromium (Debian's package,
//! installed by `scripts/test-deps`) loads it without errors and renders the findings, the charts
//! and the key tables. Fails, never skips, when Chromium is missing.

mod common;

use std::path::PathBuf;

use common::report::*;

/// `chromium` on `PATH` (Debian's package, installed by `scripts/test-deps`), or `KMSWATCH_CHROMIUM`.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("KMSWATCH_CHROMIUM") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium not found on PATH: run scripts/test-deps (it installs Debian's chromium)"
            )
        })
}

#[test]
fn html_report_renders_in_headless_chromium() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let report = replay_report(dir.path(), None);
    let html = report.join("report.html");
    let page = read(&html);
    assert!(!page.contains("<script"), "no JavaScript");
    assert!(
        !page.contains("http://")
            || page.matches("http://").count()
                == page.matches("http://www.w3.org/2000/svg").count(),
        "no external resources"
    );
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", browser.display()));
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (dom, log) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    for bad in ["Uncaught", "Failed to load resource", "ERR_FILE_NOT_FOUND"] {
        assert!(!log.contains(bad), "{bad} in chromium's log:\n{log}");
    }
    // The rendered page holds the findings, the coverage, the charts and the busiest key's row.
    let keys = csv(&report.join("keys.csv"));
    let busiest = keys
        .iter()
        .filter(|k| !k["key_arn"].is_empty())
        .max_by_key(|k| (n(k, "calls"), std::cmp::Reverse(k["key_arn"].clone())))
        .unwrap();
    for want in [
        "<h2>Findings</h2>",
        "<h2>Coverage</h2>",
        "<h3>keys (by calls)</h3>",
        "<th>key_arn</th>",
        "Calls per day, all keys",
        "Failed calls per day, all keys",
        &format!(
            "<td>{}</td><td>{}</td>",
            busiest["key_arn"], busiest["calls"]
        ),
    ] {
        assert!(dom.contains(want), "{want:?} not in the rendered page");
    }
    assert_eq!(
        dom.matches("<svg").count(),
        5,
        "two overall charts and three busiest keys"
    );
}
