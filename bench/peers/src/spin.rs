//! `--park-spin-us`: a current-thread tokio runtime whose thread spins before it parks,
//! with the rule of `actix_ws_session::runtime::spinning_runtime` (spin for the given time
//! before blocking for I/O, only while the previous wait was shorter than four spins), so
//! every client of a side-by-side run can get the same runtime.
//!
//! It is a copy rather than a dependency on the crate under test: with that dependency
//! the peers' binary was compiled differently, and fastwebsockets' masking kernel ran at
//! 68 instead of 85 GB/s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A thread spins only while its previous wait was shorter than this many spins.
const DENSE_WAITS: u64 = 4;

/// The current-thread runtime, spinning for `spin` before it parks (see the module docs).
pub fn spinning_runtime(spin: Duration) -> std::io::Result<tokio::runtime::Runtime> {
    let epoch = Instant::now();
    let spin_ns = u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX);
    let blocked_at = Arc::new(AtomicU64::new(0));
    let last_wait = Arc::new(AtomicU64::new(u64::MAX));
    let (at, last) = (blocked_at.clone(), last_wait.clone());
    let now = move || u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || {
            if last.load(Ordering::Relaxed) < spin_ns.saturating_mul(DENSE_WAITS) {
                let end = Instant::now() + spin;
                while Instant::now() < end {
                    std::hint::spin_loop();
                }
            }
            at.store(now(), Ordering::Relaxed);
        })
        .on_thread_unpark(move || {
            let waited = now().saturating_sub(blocked_at.load(Ordering::Relaxed));
            last_wait.store(waited, Ordering::Relaxed);
        })
        .build()
}
