//! Giving memory back after jobs. A big job's task records, results and
//! outputs are freed when it ends, but glibc's allocator keeps the pages
//! for itself: a 100,000-task batch left the server at about three times
//! its idle size for good. After jobs end (once a burst of them settles),
//! `malloc_trim` hands the free pages back to the OS.

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
