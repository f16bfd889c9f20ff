//! Run the calling thread at background CPU priority.
//!
//! The writer's work (checksum, copying tens of MB into the page cache) is
//! CPU work. On a small machine it competes with llama.cpp's threads, which
//! wait for each other at every operation: one of them losing its core for
//! a few milliseconds stalls the whole step, so a persist running beside a
//! returning agent's turn made that turn's first token ~50 ms slower
//! (2-core VM, 2K-token agent). At nice 10 the scheduler gives the writer
//! only what the engine leaves; it still progresses under full load (about
//! a tenth of a core), so files trail completed turns by a bounded time.

/// Nice value of the writer thread (0 is the default, 19 the lowest).
const WRITER_NICE: i32 = 10;

/// Lower the calling thread's priority; logs and carries on if refused.
#[cfg(target_os = "linux")]
pub(crate) fn lower_current_thread() {
    // SAFETY: gettid has no preconditions. setpriority only reads its
    // integer arguments; on Linux, PRIO_PROCESS with a thread id sets that
    // one thread's nice value (see setpriority(2), "BUGS": nice is a
    // per-thread attribute), here the calling thread's own.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WRITER_NICE)
    };
    if result != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the KV writer thread's priority"
        );
    }
}

/// Other systems: the thread keeps the default priority.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_current_thread() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn lowers_only_the_calling_thread() {
        // SAFETY: getpriority reads integer arguments only.
        let nice_of =
            |tid: libc::pid_t| unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
        // SAFETY: gettid has no preconditions.
        let main_tid = unsafe { libc::gettid() };
        let before = nice_of(main_tid);
        let inside = std::thread::spawn(move || {
            super::lower_current_thread();
            // SAFETY: as above.
            nice_of(unsafe { libc::gettid() })
        })
        .join()
        .expect("the thread runs");
        if before <= super::WRITER_NICE {
            assert_eq!(inside, super::WRITER_NICE);
        }
        assert_eq!(nice_of(main_tid), before, "only the calling thread changes");
    }
}
