//! How the process uses memory: the settings `custval` applies at start, shared with the
//! benchmarks so that they measure the same allocator behaviour as the binary.
//!
//! The binary (and each benchmark) allocates with mimalloc (`#[global_allocator]` must be
//! declared in each of them); [`configure`] then sets mimalloc's options and the process's
//! huge-page policy before any large allocation.

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (libmimalloc-sys names no constant
/// for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies [`keep_freed_memory`] and [`no_transparent_huge_pages`]. Call first thing in `main`.
pub fn configure() {
    keep_freed_memory();
    no_transparent_huge_pages();
}

/// Never give freed pages back to the OS while the run lives. By default mimalloc purges them
/// after 10 ms, and the next bucket's buffers fault them in again: the kernel zeroing those
/// pages was 17 % of a backfill's CPU time. Without purging, the 50 M-row run took 27.1–28.5 s
/// instead of 29.7–30.0 s, at a peak of 2.55–2.63 GB instead of 2.06–2.12 GB (session 7,
/// docs/benchmark-history.md). `MIMALLOC_PURGE_DELAY` in the environment still overrides it.
fn keep_freed_memory() {
    // SAFETY: sets a plain integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, -1) };
}

/// Transparent huge pages off for this process (`PR_SET_THP_DISABLE`). mimalloc asks for them
/// on its arenas, and each first touch of a huge page faulted in and zeroed 2 MiB: measured on
/// the 50 M-row scale workload, the run took 21.6–23.1 s with them and 20.9–21.1 s without
/// (the features step, where the heap grows to its peak, 1.5 s against 0.7 s). Setting
/// `MIMALLOC_ALLOW_THP` in the environment leaves the choice to mimalloc.
fn no_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: a process attribute; no memory is touched. A failure (old kernel) changes
    // nothing but speed, so the result is not checked.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
