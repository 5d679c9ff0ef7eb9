//! Socket buffers, reused by the sessions of one thread.
//!
//! A message read off the socket is handed to the user as a slice of the read buffer (no
//! copy), so the read buffer's memory lives on in the user's hands until they drop the
//! message. Without reuse, every large read then needs a fresh allocation, and fresh
//! memory costs a page fault per 4 KiB on first touch — more than the copy the zero-copy
//! design saves. The same goes for write batches, which are allocated per write so that
//! an idle session holds none.
//!
//! The pool keeps the buffers a session lets go of (its read buffer's remains when it
//! moves to a new one, a write batch once written) and hands them out again once nothing
//! else refers to their memory, i.e. once the user dropped every message sliced from them.
//! It is per thread: the sessions of one arbiter share it, and nothing is locked. It keeps
//! at most [`MAX_ENTRIES`] buffers and [`MAX_BYTES`] bytes; beyond that the oldest
//! buffers are released to the allocator. On an actix arbiter (where sessions run), a
//! buffer that waits unused for [`IDLE_RELEASE`] is released too: while the pool holds
//! any, a task on the arbiter looks every [`SWEEP_EVERY`], so the pool shrinks to what the
//! current traffic uses and holds nothing a few seconds after the traffic stops (a burst
//! of 1 MiB messages used to leave 16 MiB in it for the thread's lifetime).
//!
//! Every request from [`SMALL_FROM`] bytes up is served from the pool, in size classes: a
//! power of two from [`SMALL_SIZE`] up to [`MIN_POOLED`] bytes, then multiples of
//! [`GRANULE`]. A request under [`MIN_POOLED`] bytes takes only a buffer of its own class,
//! so a small message never pins a large buffer; a larger request takes the smallest buffer
//! that fits. Allocated per read or per batch instead, the small and medium sizes made
//! glibc's allocator merge its recently freed small blocks (bench/RESULTS.md, "Allocations
//! per batch"), and trim and regrow its heap, so that reads of 16 KiB messages landed in
//! fresh memory and page-faulted (bench/RESULTS.md, "Medium buffers"). Requests below
//! [`SMALL_FROM`] bytes are plain allocations of their exact size.

use std::cell::RefCell;
use std::time::Duration;

use bytes::BytesMut;

/// Smallest large buffer; a read of a frame this large goes to a buffer of its own.
pub(crate) const MIN_POOLED: usize = 64 * 1024;
/// Smallest request served by the pool. Below it glibc's allocator serves requests from
/// its small bins, without the merging that larger requests trigger.
const SMALL_FROM: usize = 1024;
/// The smallest class: what a connection reads at once after waiting (its probe read),
/// and so also the most a small message keeps allocated while it lives (see
/// [`Incoming`](crate::Incoming)).
const SMALL_SIZE: usize = 8 * 1024;
/// From [`MIN_POOLED`] bytes up, allocation sizes are rounded up to a multiple of this, so
/// that buffers for messages of about the same size are interchangeable.
const GRANULE: usize = 64 * 1024;
/// Most buffers kept per thread. Many sessions on one thread return buffers in bursts: with
/// 16, 3 % of the requests at 200 sessions × 16 KiB found none free and allocated, often
/// into memory the allocator had just handed back to the kernel, which then page-faulted
/// (bench/RESULTS.md, "Medium buffers"). [`MAX_BYTES`] bounds what the pool holds.
const MAX_ENTRIES: usize = 64;
/// Most bytes kept per thread.
const MAX_BYTES: usize = 16 << 20;
/// How long a buffer may wait in the pool unused before it goes back to the allocator
/// (the sweep finds it within [`SWEEP_EVERY`] more). Traffic reuses a buffer within
/// milliseconds; a pause this long means it is not needed.
const IDLE_RELEASE: Duration = Duration::from_secs(2);
/// How often the pool looks for buffers unused that long, while it holds any.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Sweeps a buffer stays in the pool unused before one releases it: the pool's clock is
/// its count of sweeps, so that giving a buffer back reads no clock. Given back between
/// two sweeps, a buffer has waited at least [`IDLE_RELEASE`] when the sweep this many
/// after the one before its return comes, and at most one [`SWEEP_EVERY`] more.
const IDLE_SWEEPS: u64 = (IDLE_RELEASE.as_millis() / SWEEP_EVERY.as_millis()) as u64 + 1;

/// A buffer and the size of its whole allocation (a pooled handle may only be the tail of
/// it, the head being sliced off into messages).
#[derive(Debug)]
pub(crate) struct Pooled {
    pub(crate) buf: BytesMut,
    pub(crate) size: usize,
}

/// A buffer in the pool and when it was given back (the pool's sweep count then).
#[derive(Debug)]
struct Kept {
    pooled: Pooled,
    since: u64,
}

#[derive(Debug, Default)]
struct Pool {
    /// In the order they were given back (`since` ascending; [`Pool::sweep`] relies on it).
    entries: Vec<Kept>,
    bytes: usize,
    /// Sweeps made on this thread so far: the pool's clock, in steps of [`SWEEP_EVERY`].
    sweeps: u64,
    /// A sweeper task was handed to this thread's arbiter and is not dropped yet (see
    /// [`SweeperRunning`]).
    sweeping: bool,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::default();
}

/// Whether a request for `size` bytes is served from the pool (see the module docs).
pub(crate) fn is_pooled(size: usize) -> bool {
    size >= SMALL_FROM
}

/// The size of the pooled buffers that serve a request of `size` (a pooled size) bytes.
fn class_size(size: usize) -> usize {
    if size <= MIN_POOLED {
        size.max(SMALL_SIZE).next_power_of_two()
    } else {
        size.next_multiple_of(GRANULE)
    }
}

/// An empty buffer with room for at least `size` bytes: for a pooled size, a pooled buffer
/// whose memory is free again if there is one (of the request's class under
/// [`MIN_POOLED`] bytes, else the smallest that fits; among equals, the one returned
/// last), or else a new allocation of the class's size; otherwise a plain allocation of
/// exactly `size` bytes.
pub(crate) fn take(size: usize) -> Pooled {
    if !is_pooled(size) {
        return Pooled {
            buf: BytesMut::with_capacity(size),
            size,
        };
    }
    let reused = POOL.with(|pool| pool.borrow_mut().take(size));
    reused.unwrap_or_else(|| {
        let size = class_size(size);
        Pooled {
            buf: BytesMut::with_capacity(size),
            size,
        }
    })
}

/// Returns a buffer whose contents are no longer needed. Buffers whose allocation is not
/// of a class's size (a plain allocation, or one the allocator grew) are simply dropped.
pub(crate) fn give(pooled: Pooled) {
    let class_sized = class_size(pooled.size) == pooled.size;
    if !class_sized || pooled.size > MAX_BYTES {
        return;
    }
    let start_sweeping = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.give(pooled);
        !std::mem::replace(&mut pool.sweeping, true)
    });
    if start_sweeping {
        start_sweeper();
    }
}

/// Starts [`sweep_while_kept`] on the current thread's arbiter. Without one (outside an
/// actix runtime), kept buffers wait to be reused or pushed out by the pool's bounds.
fn start_sweeper() {
    let running = SweeperRunning;
    // Only this thread's own arbiter will do: it runs the task on this thread, whose pool
    // the task sweeps. If the arbiter is gone, `spawn` drops the task here at once.
    if let Some(arbiter) = actix_rt::Arbiter::try_current() {
        arbiter.spawn(async move {
            let _running = running;
            sweep_while_kept().await;
        });
    }
}

/// Held by the sweeper task: clears the pool's `sweeping` flag when the task ends or is
/// dropped without ending (its arbiter stopped, or its runtime was dropped while the pool
/// held buffers), so that the next [`give`] starts a new one. The task is dropped on the
/// pool's thread in every case: by `spawn` when the arbiter is gone, otherwise by the
/// arbiter's task set or its queue.
struct SweeperRunning;

impl Drop for SweeperRunning {
    fn drop(&mut self) {
        let _ = POOL.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                pool.sweeping = false;
            }
        });
    }
}

/// Every [`SWEEP_EVERY`], releases the buffers that waited unused for [`IDLE_RELEASE`];
/// returns once the pool is empty (the next [`give`] starts a new sweeper).
async fn sweep_while_kept() {
    loop {
        actix_rt::time::sleep(SWEEP_EVERY).await;
        let emptied = POOL.try_with(|pool| pool.borrow_mut().sweep());
        // Also ends if the thread is already tearing its pool down.
        if emptied.unwrap_or(true) {
            return;
        }
    }
}

impl Pool {
    /// A free buffer of at least `size` (a pooled size) bytes. Under [`MIN_POOLED`] bytes
    /// only one of the request's class: a small message never pins a large buffer.
    fn take(&mut self, size: usize) -> Option<Pooled> {
        let class = class_size(size);
        let own_class_only = size < MIN_POOLED;
        let mut best: Option<(usize, usize)> = None;
        // Newest first, so that of equal sizes the buffer returned last wins: its memory
        // is the likeliest to still be in the CPU's caches. Cycling through the oldest
        // instead made every 1 MiB write batch and read buffer miss the cache
        // (bench/RESULTS.md, "Buffer reuse").
        for (i, kept) in self.entries.iter_mut().enumerate().rev() {
            let entry = &mut kept.pooled;
            let fits = if own_class_only {
                entry.size == class
            } else {
                entry.size >= size
            };
            let smaller = best.is_none_or(|(_, best_size)| entry.size < best_size);
            // Entries are kept empty. Reclaiming succeeds if the free tail already holds
            // `size` bytes, or if no message still refers to the memory (the buffer then
            // moves back to its allocation's start).
            if fits && smaller && entry.buf.try_reclaim(size) {
                best = Some((i, entry.size));
                if entry.size == class {
                    break; // no pooled buffer that fits is smaller than the class
                }
            }
        }
        let entry = self.entries.remove(best?.0).pooled;
        self.bytes -= entry.size;
        Some(entry)
    }

    fn give(&mut self, mut pooled: Pooled) {
        pooled.buf.clear();
        self.bytes += pooled.size;
        let since = self.sweeps;
        self.entries.push(Kept { pooled, since });
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let oldest = self.entries.remove(0);
            self.bytes -= oldest.pooled.size;
        }
    }

    /// Counts a sweep, then releases the buffers given back [`IDLE_SWEEPS`] sweeps ago or
    /// more (entries are in the order they were given, so those are the first ones);
    /// returns whether the pool is now empty.
    fn sweep(&mut self) -> bool {
        self.sweeps += 1;
        let now = self.sweeps;
        let idle = self
            .entries
            .partition_point(|kept| now - kept.since >= IDLE_SWEEPS);
        for released in self.entries.drain(..idle) {
            self.bytes -= released.pooled.size;
        }
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_once_its_messages_are_dropped() {
        let mut first = take(256 * 1024);
        let address = first.buf.as_ptr();
        first.buf.extend_from_slice(&[7u8; 200 * 1024]);
        let message = first.buf.split_to(200 * 1024).freeze();
        give(first);

        // The message still uses the memory: a new buffer is allocated.
        let second = take(256 * 1024);
        assert_ne!(second.buf.as_ptr(), address);
        assert_eq!(&message[..3], &[7, 7, 7]);

        drop(message);
        let third = take(256 * 1024);
        assert_eq!(third.buf.as_ptr(), address, "the freed buffer is reused");
        assert!(third.buf.capacity() >= 256 * 1024);
        assert!(third.buf.is_empty());
        give(second);
        give(third);
    }

    #[test]
    fn the_smallest_fitting_buffer_is_chosen() {
        let big = take(1 << 20);
        let small = take(128 * 1024);
        let small_address = small.buf.as_ptr();
        give(big);
        give(small);
        let again = take(100 * 1024);
        assert_eq!(again.buf.as_ptr(), small_address);
        assert_eq!(again.size, 128 * 1024);
        give(again);
    }

    #[test]
    fn of_equal_buffers_the_one_returned_last_is_reused() {
        let first = take(256 * 1024);
        let second = take(256 * 1024);
        let second_address = second.buf.as_ptr();
        give(first);
        give(second);
        let again = take(256 * 1024);
        assert_eq!(again.buf.as_ptr(), second_address);
        give(again);
    }

    #[test]
    fn small_requests_share_one_pooled_size_and_never_take_a_large_buffer() {
        let large = take(MIN_POOLED);
        give(large);
        let small = take(SMALL_FROM);
        assert_eq!(
            small.size, SMALL_SIZE,
            "a new small buffer, not the large one"
        );
        assert_eq!(small.buf.capacity(), SMALL_SIZE);
        let address = small.buf.as_ptr();
        give(small);
        let again = take(SMALL_SIZE);
        assert_eq!(again.buf.as_ptr(), address);
        assert_eq!(again.size, SMALL_SIZE);
        give(again);
    }

    #[test]
    fn medium_requests_are_served_by_power_of_two_classes() {
        // A 16 KiB message with its header: the 32 KiB class.
        let read = take(16 * 1024 + 4);
        assert_eq!(read.size, 32 * 1024);
        assert_eq!(read.buf.capacity(), 32 * 1024);
        let address = read.buf.as_ptr();
        give(read);
        // A smaller class does not take it...
        let smaller = take(10 * 1024);
        assert_eq!(smaller.size, 16 * 1024);
        assert_ne!(smaller.buf.as_ptr(), address);
        // ...a request of the same class does.
        let again = take(20 * 1024);
        assert_eq!(again.buf.as_ptr(), address);
        assert_eq!(again.size, 32 * 1024);
        give(smaller);
        give(again);
    }

    #[test]
    fn a_buffer_not_of_a_class_size_is_not_kept() {
        // What a write batch that had to grow past its hint may come back as.
        let odd = Pooled {
            buf: BytesMut::with_capacity(40 * 1024),
            size: 40 * 1024,
        };
        let before = POOL.with(|pool| pool.borrow().entries.len());
        give(odd);
        POOL.with(|pool| assert_eq!(pool.borrow().entries.len(), before));
    }

    #[test]
    fn a_reused_tail_keeps_its_allocations_size() {
        let mut read = take(4 * 1024);
        read.buf.extend_from_slice(&[1u8; 1000]);
        let message = read.buf.split_to(1000).freeze();
        give(read);
        // The message pins the head; the free tail is big enough for a small batch.
        let batch = take(2 * 1024);
        assert!(batch.buf.capacity() < SMALL_SIZE, "a view of the tail");
        assert_eq!(
            batch.size, SMALL_SIZE,
            "the size the pool will be given back"
        );
        assert_eq!(message.len(), 1000);
        give(batch);
    }

    #[test]
    fn small_buffers_are_plain_allocations_and_not_kept() {
        let small = take(100);
        assert!(small.buf.capacity() >= 100);
        assert_eq!(small.size, 100);
        let kept = POOL.with(|pool| pool.borrow().entries.len());
        give(small);
        POOL.with(|pool| assert_eq!(pool.borrow().entries.len(), kept));
    }

    #[test]
    fn buffers_unused_for_a_while_are_released() {
        assert_eq!(IDLE_SWEEPS, 3, "2 s idle, swept every second");
        let mut pool = Pool::default();
        pool.give(take(MIN_POOLED));
        assert!(!pool.sweep());
        pool.give(take(2 * MIN_POOLED));
        assert!(!pool.sweep(), "nothing idle long enough yet");
        assert_eq!(pool.entries.len(), 2);

        assert!(!pool.sweep());
        assert_eq!(
            pool.entries.len(),
            1,
            "only the first one was idle that long"
        );
        assert_eq!(pool.bytes, 2 * MIN_POOLED);

        // Taking a buffer and giving it back makes it new again.
        let again = pool.take(MIN_POOLED).expect("the kept buffer fits");
        pool.give(again);
        assert!(!pool.sweep());
        assert!(!pool.sweep());
        assert!(pool.sweep());
        assert_eq!(pool.bytes, 0);
    }

    #[actix_rt::test]
    async fn the_thread_pool_empties_itself_after_the_traffic_stops() {
        let held = |pool: &RefCell<Pool>| {
            let pool = pool.borrow();
            (pool.entries.len(), pool.sweeping)
        };
        give(take(MIN_POOLED));
        give(take(SMALL_SIZE));
        assert_eq!(POOL.with(held), (2, true), "kept, and a sweeper runs");

        // Released after IDLE_RELEASE, found within SWEEP_EVERY; the bound is generous.
        let deadline = std::time::Instant::now() + 5 * (IDLE_RELEASE + SWEEP_EVERY);
        while POOL.with(held).0 > 0 && std::time::Instant::now() < deadline {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            POOL.with(held),
            (0, false),
            "released while nothing used them, and the sweeper ended"
        );

        give(take(MIN_POOLED));
        assert_eq!(
            POOL.with(held),
            (1, true),
            "the next buffer starts it again"
        );
    }

    fn sweeping() -> bool {
        POOL.with(|pool| pool.borrow().sweeping)
    }

    #[test]
    fn a_sweeper_dropped_with_its_runtime_lets_the_next_runtime_start_one() {
        let first = actix_rt::System::new();
        first.block_on(async {
            give(take(MIN_POOLED));
            assert!(sweeping());
        });
        drop(first); // with the buffer still in the pool, so the sweeper had not ended
        assert!(!sweeping(), "the dropped sweeper cleared its flag");

        let second = actix_rt::System::new();
        second.block_on(async {
            give(take(MIN_POOLED));
            assert!(sweeping(), "a new sweeper for the new runtime");
        });
    }

    #[actix_rt::test]
    async fn a_sweeper_its_stopping_arbiter_never_runs_clears_its_flag() {
        actix_rt::Arbiter::current().stop();
        give(take(MIN_POOLED));
        // The arbiter reads its stop, then drops the sweeper queued behind it.
        for _ in 0..10 {
            actix_rt::task::yield_now().await;
        }
        assert!(!sweeping(), "no sweeper is waiting to run");
    }

    #[test]
    fn without_an_arbiter_buffers_wait_for_reuse() {
        give(take(MIN_POOLED));
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert_eq!(pool.entries.len(), 1);
            assert!(!pool.sweeping, "no runtime to sweep on");
        });
    }

    #[test]
    fn the_pool_is_bounded() {
        let buffers: Vec<Pooled> = (0..MAX_ENTRIES + 4).map(|_| take(MIN_POOLED)).collect();
        for buffer in buffers {
            give(buffer);
        }
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert_eq!(pool.entries.len(), MAX_ENTRIES);
            assert!(pool.bytes <= MAX_BYTES);
        });
        let huge = take(MAX_BYTES + 1);
        give(huge); // too big to keep
        POOL.with(|pool| assert!(pool.borrow().bytes <= MAX_BYTES));
    }
}
