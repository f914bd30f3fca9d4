//! The allocator's tuning, shared by the binary and the benchmarks so they measure what ships.
//!
//! Both use mimalloc rather than glibc's malloc (each declares it as its `#[global_allocator]`):
//! a replay decodes objects of several MB on every worker thread, and glibc keeps what those
//! threads free in per-thread arenas, so resident memory grew far past what was live.

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (`include/mimalloc.h` of the sources
/// libmimalloc-sys 0.1.49 builds; its Rust constants do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds before mimalloc returns freed pages to the system: mimalloc's documented 10, not
/// the 1,000 this build starts with. A replay frees and allocates a decoded object's buffers
/// (megabytes each) many times a second; with a one-second delay what was freed in the last
/// second stays resident beside what replaced it: about 35 MiB of peak RSS on the 1M-call scale
/// set, for about 0.5 s of kernel time over its 10 s.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets mimalloc's options; call first thing in `main`. Harmless under another allocator (the
/// options are then unused).
pub fn tune() {
    // SAFETY: sets a plain integer option of the allocator; no memory is involved.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}
