//! Per-thread shelves of empty vectors, so the queues a batch passes through reuse warm
//! allocations instead of asking the allocator every time.
//!
//! A batch of pipelined messages crosses several short-lived vectors: the session's frames
//! on their way to the codec, the codec's queue and the frames of the write in flight, the
//! messages of one read and the events handed to the stream. Allocated per batch, the
//! larger of them are exactly the requests that make glibc's allocator merge all its
//! recently freed small blocks (`malloc_consolidate`), which slowed every allocation after
//! it: about 530 of 2,940 instructions per pipelined message went there (bench/RESULTS.md,
//! "Allocations per batch"). Taken from the thread's shelf and put back once emptied, they
//! cost no allocation in a steady stream, while a session that waits holds none of them:
//! what it does not use is on the shelf, shared by the sessions of its thread.
//!
//! Each element type has its own shelf ([`Recyclable`]), holding at most [`MAX_KEPT`]
//! vectors of at most [`MAX_VEC_BYTES`] bytes each, and [`MAX_SHELF_BYTES`] in all. Nothing
//! is locked: a vector given back on another thread (a stream polled elsewhere) joins that
//! thread's shelf.

use std::cell::RefCell;
use std::thread::LocalKey;

/// Most vectors kept on one shelf. Every session of a thread may have a batch under way at
/// once (a hundred connections, each with a read decoded and a batch queued, in one turn of
/// the event loop), so the count is generous and [`MAX_SHELF_BYTES`] is what bounds memory.
pub(crate) const MAX_KEPT: usize = 256;
/// Largest vector kept, in bytes of capacity; larger ones go back to the allocator.
pub(crate) const MAX_VEC_BYTES: usize = 64 * 1024;
/// Most bytes of capacity one shelf keeps, all its vectors together.
pub(crate) const MAX_SHELF_BYTES: usize = 256 * 1024;

/// The empty vectors of one element type kept by one thread, and their bytes of capacity.
#[derive(Debug)]
pub(crate) struct Shelf<T> {
    kept: Vec<Vec<T>>,
    bytes: usize,
}

/// An element type whose vectors are recycled: it names its thread's shelf.
pub(crate) trait Recyclable: Sized + 'static {
    /// This thread's shelf for vectors of `Self`.
    fn shelf() -> &'static LocalKey<RefCell<Shelf<Self>>>;
}

/// Implements [`Recyclable`] for each type, with a thread-local shelf of its own.
macro_rules! recyclable {
    ($($element:ty),+ $(,)?) => {$(
        impl $crate::actors::recycle::Recyclable for $element {
            fn shelf() -> &'static ::std::thread::LocalKey<
                ::std::cell::RefCell<$crate::actors::recycle::Shelf<Self>>,
            > {
                ::std::thread_local! {
                    static SHELF: ::std::cell::RefCell<$crate::actors::recycle::Shelf<$element>> =
                        ::std::cell::RefCell::new($crate::actors::recycle::Shelf::empty());
                }
                &SHELF
            }
        }
    )+};
}
pub(crate) use recyclable;

impl<T> Shelf<T> {
    /// A shelf with nothing on it.
    pub(crate) const fn empty() -> Self {
        Self {
            kept: Vec::new(),
            bytes: 0,
        }
    }
}

/// Bytes of capacity of `vec`.
fn capacity_bytes<T>(vec: &Vec<T>) -> usize {
    vec.capacity()
        .saturating_mul(std::mem::size_of::<T>().max(1))
}

/// An empty vector: the one put back last on this thread's shelf, or a new one without
/// capacity (which allocates only when first pushed to).
#[inline(never)]
pub(crate) fn take<T: Recyclable>() -> Vec<T> {
    T::shelf()
        .try_with(|shelf| {
            let mut shelf = shelf.borrow_mut();
            let vec = shelf.kept.pop()?;
            shelf.bytes -= capacity_bytes(&vec);
            Some(vec)
        })
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Empties `vec` (dropping what it holds) and keeps its allocation on this thread's shelf
/// for the next [`take`], unless it has none, is larger than [`MAX_VEC_BYTES`] or the shelf
/// is full (it holds [`MAX_KEPT`] vectors, or this one would take it past
/// [`MAX_SHELF_BYTES`]).
pub(crate) fn give<T: Recyclable>(mut vec: Vec<T>) {
    vec.clear();
    let bytes = capacity_bytes(&vec);
    if vec.capacity() == 0 || bytes > MAX_VEC_BYTES {
        return;
    }
    // During thread teardown the shelf may be gone: the vector is then simply dropped.
    let _ = T::shelf().try_with(|shelf| {
        let mut shelf = shelf.borrow_mut();
        if shelf.kept.len() < MAX_KEPT && shelf.bytes + bytes <= MAX_SHELF_BYTES {
            shelf.bytes += bytes;
            shelf.kept.push(vec);
        }
    });
}

/// Makes sure `vec` has an allocation from the shelf before it is filled, if it has none.
///
/// Called before every push on some hot paths, so the check is inlined and the shelf is
/// reached only when the vector has no allocation.
#[inline]
pub(crate) fn stock<T: Recyclable>(vec: &mut Vec<T>) {
    if vec.capacity() == 0 {
        *vec = take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Item(#[allow(dead_code)] u64);
    recyclable!(Item);

    fn kept() -> usize {
        Item::shelf().with(|shelf| shelf.borrow().kept.len())
    }

    /// Tests may share a thread (`--test-threads=1`): each starts from an empty shelf.
    fn clear() {
        Item::shelf().with(|shelf| *shelf.borrow_mut() = Shelf::empty());
    }

    #[test]
    fn a_vector_given_back_is_taken_again_empty_with_its_allocation() {
        clear();
        let mut first: Vec<Item> = take();
        first.extend((0..100).map(Item));
        let address = first.as_ptr();
        give(first);
        let again: Vec<Item> = take();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address);
        assert!(again.capacity() >= 100);
    }

    #[test]
    fn empty_large_and_surplus_vectors_are_not_kept() {
        clear();
        give(Vec::<Item>::new());
        assert_eq!(kept(), 0, "no allocation, nothing to keep");
        give(Vec::<Item>::with_capacity(MAX_VEC_BYTES / 8 + 1));
        assert_eq!(kept(), 0, "over the byte bound");
        for _ in 0..MAX_KEPT + 3 {
            give(Vec::<Item>::with_capacity(4));
        }
        assert_eq!(kept(), MAX_KEPT);
    }

    #[test]
    fn a_shelf_keeps_at_most_its_byte_budget() {
        clear();
        let per_vec = MAX_VEC_BYTES / 8; // capacity of 8-byte items: MAX_VEC_BYTES bytes
        let fits = MAX_SHELF_BYTES / MAX_VEC_BYTES;
        for _ in 0..fits + 2 {
            give(Vec::<Item>::with_capacity(per_vec));
        }
        assert_eq!(kept(), fits, "full by bytes");
        let taken: Vec<Item> = take();
        assert!(taken.capacity() >= per_vec);
        give(taken);
        assert_eq!(kept(), fits, "room again once one was taken");
    }

    #[test]
    fn stock_fills_only_a_vector_without_allocation() {
        clear();
        give(Vec::<Item>::with_capacity(32));
        let mut own: Vec<Item> = Vec::with_capacity(2);
        let address = own.as_ptr();
        stock(&mut own);
        assert_eq!(own.as_ptr(), address, "it had an allocation");
        let mut bare: Vec<Item> = Vec::new();
        stock(&mut bare);
        assert!(bare.capacity() >= 32, "taken from the shelf");
    }
}
