//! Runtimes for arbiter threads that carry heavy traffic: spin briefly before blocking.
//!
//! An actix thread that has run out of work blocks in the kernel until a socket is ready,
//! and whoever makes it ready (the peer's `write`, on loopback, or the network interrupt)
//! then pays to wake it. A session thread that keeps up easily with a fast peer runs out of
//! work thousands of times a second, and every time the peer pays a wake-up; on virtual
//! machines a cross-CPU wake-up costs several microseconds. [`spinning_runtime`] builds the
//! runtime for a `System` or an `Arbiter` so that its thread, before it blocks, first spins
//! in user space for a few microseconds: the next messages usually arrive meanwhile, nobody
//! has to wake the thread, and the following wait for I/O collects them in one go.
//!
//! The spin costs CPU time, so it is opt-in, and it only happens while traffic is dense: a
//! thread spins only if its previous wait for I/O was shorter than [`DENSE_WAITS`] spins. A
//! session thread that waits milliseconds between messages never spins; one that sleeps
//! only microseconds does. The default actix runtime (what `actix::System::new()` and
//! `Arbiter::new()` build) does not spin.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};

/// A thread spins before blocking only if its previous wait for I/O was shorter than this
/// many spins.
pub const DENSE_WAITS: u32 = 4;

/// Builds the current-thread tokio runtime that actix runs a `System` or an `Arbiter` on
/// (I/O and timers enabled, as `actix_rt` builds it), except that before its thread blocks
/// waiting for I/O it spins for `spin`, as long as its previous wait was shorter than
/// [`DENSE_WAITS`] × `spin`. A `spin` of zero builds a runtime that never spins.
///
/// A few microseconds are enough (10 µs on this project's benchmark machine;
/// `bench/RESULTS.md`, "Spinning before parking"); longer spins delay messages that arrive
/// during the spin, since the thread does not look at its sockets while it spins. Use it
/// for the threads that carry sessions, on machines where those threads have cores of their
/// own:
///
/// ```no_run
/// use std::time::Duration;
/// use actix_ws_session::runtime::spinning_runtime;
///
/// let spin = Duration::from_micros(10);
/// let system = actix_rt::System::with_tokio_rt(move || {
///     spinning_runtime(spin).expect("a tokio runtime")
/// });
/// let arbiter = actix_rt::Arbiter::with_tokio_rt(move || {
///     spinning_runtime(spin).expect("a tokio runtime")
/// });
/// # drop(arbiter);
/// # drop(system);
/// ```
///
/// # Errors
///
/// What tokio's [`Builder::build`] returns: the I/O driver could not be created (for
/// instance, out of file descriptors).
pub fn spinning_runtime(spin: Duration) -> io::Result<Runtime> {
    let mut builder = Builder::new_current_thread();
    builder.enable_all();
    if !spin.is_zero() {
        let waits = Arc::new(Waits::new(spin));
        let before = Arc::clone(&waits);
        builder
            .on_thread_park(move || {
                mark_spinning(&before);
                before.before_blocking();
            })
            .on_thread_unpark(move || waits.after_blocking());
    }
    builder.build()
}

thread_local! {
    /// The waits of the spinning runtime this thread last parked on; dead once that
    /// runtime is dropped.
    static SPINNING: RefCell<Weak<Waits>> = const { RefCell::new(Weak::new()) };
}

/// Whether the current thread runs a runtime built by [`spinning_runtime`] (one that is
/// still alive and has parked at least once). The codec actor writes pipelined frames at
/// once there instead of waiting scheduler turns for more to join them.
pub(crate) fn spins_before_parking() -> bool {
    SPINNING.with(|spinning| spinning.borrow().strong_count() > 0)
}

/// What one runtime thread knows about its waits for I/O (the runtime calls both hooks on
/// its own thread; the atomics only make the hooks `Sync`, as tokio requires).
#[derive(Debug)]
struct Waits {
    spin: Duration,
    /// The clock the nanosecond counts below start from.
    epoch: Instant,
    /// When the current wait began, in nanoseconds since `epoch`.
    blocked_at: AtomicU64,
    /// How long the previous wait lasted, in nanoseconds; `u64::MAX` before the first.
    last_wait: AtomicU64,
}

impl Waits {
    fn new(spin: Duration) -> Self {
        Self {
            spin,
            epoch: Instant::now(),
            blocked_at: AtomicU64::new(0),
            last_wait: AtomicU64::new(u64::MAX),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// Spins if traffic is dense, then notes when the wait begins.
    fn before_blocking(&self) {
        let last = self.last_wait.load(Ordering::Relaxed);
        if traffic_is_dense(last, self.spin) {
            spin_for(self.spin);
        }
        self.blocked_at.store(self.now(), Ordering::Relaxed);
    }

    /// Notes how long the wait lasted.
    fn after_blocking(&self) {
        let began = self.blocked_at.load(Ordering::Relaxed);
        let waited = self.now().saturating_sub(began);
        self.last_wait.store(waited, Ordering::Relaxed);
    }
}

/// Records on the current thread that it runs the spinning runtime of `waits`.
fn mark_spinning(waits: &Arc<Waits>) {
    SPINNING.with(|spinning| {
        let mut spinning = spinning.borrow_mut();
        if !std::ptr::eq(spinning.as_ptr(), Arc::as_ptr(waits)) {
            *spinning = Arc::downgrade(waits);
        }
    });
}

/// Whether a thread whose previous wait lasted `last_wait_ns` should spin for `spin`
/// before its next one: yes while waits are shorter than [`DENSE_WAITS`] spins.
fn traffic_is_dense(last_wait_ns: u64, spin: Duration) -> bool {
    last_wait_ns < nanos(spin).saturating_mul(u64::from(DENSE_WAITS))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Busy-waits for `spin` (on Linux the clock is read without a system call).
fn spin_for(spin: Duration) {
    let end = Instant::now() + spin;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPIN: Duration = Duration::from_micros(10);

    #[test]
    fn a_thread_spins_only_after_short_waits() {
        assert!(traffic_is_dense(0, SPIN));
        assert!(traffic_is_dense(39_999, SPIN));
        assert!(!traffic_is_dense(40_000, SPIN));
        assert!(!traffic_is_dense(5_000_000, SPIN));
        assert!(
            !traffic_is_dense(u64::MAX, SPIN),
            "no spin before the first wait"
        );
    }

    #[test]
    fn waits_are_measured_from_the_park_hook_to_the_unpark_hook() {
        let waits = Waits::new(SPIN);
        waits.before_blocking(); // first wait: no spin, long previous wait assumed
        std::thread::sleep(Duration::from_millis(5));
        waits.after_blocking();
        let long = waits.last_wait.load(Ordering::Relaxed);
        assert!(long >= 5_000_000, "measured {long} ns for a 5 ms wait");

        waits.before_blocking();
        waits.after_blocking();
        let short = waits.last_wait.load(Ordering::Relaxed);
        assert!(short < long, "an immediate return measured {short} ns");
    }

    #[test]
    fn a_spin_lasts_at_least_its_duration() {
        let started = Instant::now();
        spin_for(Duration::from_micros(200));
        assert!(started.elapsed() >= Duration::from_micros(200));
    }

    #[test]
    fn a_thread_spins_while_its_spinning_runtime_lives() {
        std::thread::spawn(|| {
            assert!(!spins_before_parking());
            let rt = spinning_runtime(SPIN).expect("runtime");
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(2)).await });
            assert!(spins_before_parking(), "not marked after parking");
            drop(rt);
            assert!(
                !spins_before_parking(),
                "still marked after the runtime is gone"
            );
            let plain = spinning_runtime(Duration::ZERO).expect("runtime");
            plain.block_on(async { tokio::time::sleep(Duration::from_millis(2)).await });
            assert!(!spins_before_parking(), "a plain runtime is marked");
        })
        .join()
        .expect("the test thread panicked");
    }

    #[test]
    fn a_zero_spin_builds_a_plain_runtime() {
        let rt = spinning_runtime(Duration::ZERO).expect("runtime");
        assert_eq!(rt.block_on(async { 7 }), 7);
    }
}
