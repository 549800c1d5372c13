//! Giving memory back after jobs. A big job's task records, results and
//! outputs are freed when it ends, but glibc's allocator keeps the pages
//! for itself: a 100,000-task batch left the server at about three times
//! its idle size for good. Two things bring it back near its idle size:
//! - one malloc arena ([`one_arena`]) instead of one per thread that ever
//!   allocated (up to 8 per CPU): with many arenas, the few long-lived
//!   blocks made during a job sit on pages spread over all of them, and
//!   no page that holds one can be given back;
//! - after jobs end (once a burst of them settles), `malloc_trim` hands
//!   the free pages back to the OS.

use runner::engine::JobEnded;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

pub async fn trim_after_jobs(mut ended: UnboundedReceiver<JobEnded>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            e = ended.recv() => if e.is_none() { return },
            _ = shutdown.cancelled() => return,
        }
        // Jobs often end in bursts: one trim once they settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        while ended.try_recv().is_ok() {}
        tokio::task::spawn_blocking(trim);
    }
}

/// Make glibc's malloc use one arena, unless `MALLOC_ARENA_MAX` says
/// otherwise (glibc reads it itself). Call before any thread starts.
///
/// The server's threads spend their time waiting on sockets, and one
/// arena's lock showed no cost in the throughput bench; a 100,000-task
/// batch leaves it at about 1.6× its idle size afterwards instead of 2.7×
/// (`cargo bench --bench memory`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn one_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's settings; called
        // from main before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn one_arena() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own
    // arenas; it takes no pointers and may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
