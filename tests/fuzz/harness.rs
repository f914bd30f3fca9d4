//! The fuzz runner: a proptest `TestRunner` with a deterministic RNG, a case count from the
//! environment, a watchdog that aborts with the case on a hang, and an allocator that measures
//! each case's peak memory per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Cases per target when `KMSWATCH_FUZZ_CASES` is unset: the bounded run of `scripts/test`.
const DEFAULT_CASES: u32 = 400;

/// A case running longer than this (`KMSWATCH_FUZZ_HANG_SECS`) is a hang: the process aborts.
const DEFAULT_HANG_SECS: u64 = 60;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Runs `test` on `cases` values of `strategy`, reproducibly: the RNG is seeded from the target
/// name and `KMSWATCH_FUZZ_SEED` (default 0). A failure is shrunk and reported with its input.
pub fn fuzz<S>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let cases = env_number("KMSWATCH_FUZZ_CASES", DEFAULT_CASES.into()) as u32;
    let seed = env_number("KMSWATCH_FUZZ_SEED", 0);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    for (i, b) in target.bytes().enumerate() {
        key[8 + i % 24] ^= b;
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let watchdog = Watchdog::start(target);
    let started = Instant::now();
    let result = runner.run(&strategy, |case| {
        watchdog.enter(&case);
        let r = test(case);
        watchdog.leave();
        r
    });
    watchdog.stop();
    let tally = OUTCOMES.with(|o| std::mem::take(&mut *o.borrow_mut()));
    match result {
        Ok(()) => eprintln!(
            "fuzz {target}: {cases} cases (seed {seed}) in {:.1?}; outcomes {tally:?}",
            started.elapsed()
        ),
        Err(e) => panic!("fuzz {target} (seed {seed}): {e}"),
    }
}

thread_local! {
    static OUTCOMES: std::cell::RefCell<std::collections::BTreeMap<String, u64>> = Default::default();
}

/// Counts what became of a case (printed with the run's figures: shows how deep inputs get).
pub fn outcome(what: &str) {
    OUTCOMES.with(|o| *o.borrow_mut().entry(what.to_owned()).or_default() += 1);
}

/// Aborts the process, printing the case, when one case runs past the hang limit: a hang would
/// otherwise stall the test run without saying which input did it.
struct Watchdog {
    current: Arc<Mutex<Option<(Instant, String)>>>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(target: &str) -> Watchdog {
        let limit = Duration::from_secs(env_number("KMSWATCH_FUZZ_HANG_SECS", DEFAULT_HANG_SECS));
        let current: Arc<Mutex<Option<(Instant, String)>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let (c, d, target) = (current.clone(), done.clone(), target.to_owned());
        std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let guard = c.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((since, case)) = guard.as_ref() {
                    if since.elapsed() > limit {
                        eprintln!("fuzz {target}: case runs over {limit:?} (a hang): {case}");
                        std::process::abort();
                    }
                }
            }
        });
        Watchdog { current, done }
    }

    fn enter(&self, case: &impl Debug) {
        *self.lock() = Some((Instant::now(), format!("{case:?}")));
    }

    fn leave(&self) {
        *self.lock() = None;
    }

    fn stop(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, String)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counts live bytes per thread (a free on another thread than the allocation skews only that
/// thread's count), so each target measures its own cases while the tests run in parallel.
pub struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: delegates to the system allocator; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and fails the case when its peak of live memory on this thread exceeds
/// `fixed + per_input_byte * input_len` bytes.
pub fn bounded_memory<T>(
    what: &str,
    input_len: usize,
    per_input_byte: usize,
    fixed: usize,
    f: impl FnOnce() -> T,
) -> Result<T, TestCaseError> {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = (PEAK.with(Cell::get) - base).max(0) as usize;
    let bound = fixed + per_input_byte * input_len;
    if peak > bound {
        return Err(TestCaseError::fail(format!(
            "{what}: peak memory {peak} bytes for {input_len} input bytes, over {bound}"
        )));
    }
    Ok(out)
}
