//! How the process asks glibc's allocator to treat agents' KV states.
//!
//! A state is megabytes (a few MB for 100 tokens of a small model, GBs for
//! long contexts of big ones), allocated on one thread (the engine, the
//! loader) and freed on another (the writer, the warm tier). glibc serves
//! blocks above its mmap threshold by `mmap` and gives them back on free,
//! but by default it raises that threshold after each such free (up to
//! 32 MiB), after which states come from the heap arenas, whose high-water
//! mark is never returned: resident memory climbs with every tier move
//! until it plateaus tens of MB higher. Fixing the threshold at 1 MiB
//! keeps every state in its own mapping, so freeing one returns it.
//! Measured with `semantic bench soak` (docs/performance.md).

/// Blocks at least this large are mapped, never carved from an arena.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Fix the mmap threshold (glibc on Linux; elsewhere nothing to do). An
/// explicit `MALLOC_MMAP_THRESHOLD_` in the environment wins.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called
        // at start-up, before any other thread exists.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok != 1 {
            eprintln!("warning: mallopt(M_MMAP_THRESHOLD) failed; large blocks may stay resident");
        }
    }
}
