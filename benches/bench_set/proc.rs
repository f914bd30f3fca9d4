//! A process's resident memory and CPU time, read from /proc, and a child watched for its peak
//! memory until it exits.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// What [`watch`] saw of a child from start to exit.
pub struct Watched {
    pub status: ExitStatus,
    /// Wall-clock seconds from the call to the exit.
    pub secs: f64,
    /// The last `VmHWM` read before the exit (the peak resident memory), KiB.
    pub hwm_kb: u64,
    /// The last user plus system CPU time read before the exit, seconds.
    pub cpu_secs: f64,
}

/// Waits for `child` to exit, reading its `VmHWM` and CPU time every 2 ms (once the process has
/// exited /proc has no memory lines, so the last reading is kept).
pub fn watch(mut child: Child) -> Watched {
    let t = Instant::now();
    let (mut hwm_kb, mut cpu_secs) = (0, 0.0);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if let Some((_, hwm)) = try_memory_kb(child.id()) {
            hwm_kb = hwm;
        }
        cpu_secs = try_cpu_secs(child.id()).unwrap_or(cpu_secs);
        std::thread::sleep(Duration::from_millis(2));
    };
    Watched {
        status,
        secs: t.elapsed().as_secs_f64(),
        hwm_kb,
        cpu_secs,
    }
}

/// `VmRSS` and `VmHWM` of a running process, in KiB.
pub fn memory_kb(pid: u32) -> (u64, u64) {
    try_memory_kb(pid).unwrap_or_else(|| panic!("/proc/{pid}/status: no VmRSS or VmHWM"))
}

/// `VmRSS` and `VmHWM` of a process, in KiB; none once it has exited.
pub fn try_memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User plus system CPU time of a running process (all its threads), in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    try_cpu_secs(pid).unwrap_or_else(|| panic!("/proc/{pid}/stat: no CPU times"))
}

pub fn try_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split(' ').skip(11);
    let (utime, stime): (u64, u64) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
    Some((utime + stime) as f64 / clock_ticks())
}

/// Clock ticks per second, the unit of /proc/PID/stat's CPU times.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
