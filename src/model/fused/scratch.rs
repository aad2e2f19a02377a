//! Activation buffers kept from one step to the next on the calling thread.
//!
//! A step needs the same few dozen large buffers every time. Fresh `vec![0.0; n]`s cost a
//! zeroing pass each (a gigabyte a step for the `small` preset) and, the first time, page
//! faults; every kernel here overwrites its output in full, so a buffer left over from the
//! last step serves as well. Only lengths are matched; contents are never read before they are
//! written (the fused tests compare repeated steps bit for bit).

use std::cell::RefCell;

thread_local! {
    static SPARE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// The buffers of one step: those given back during it, then the last step's.
pub struct Scratch {
    free: Vec<Vec<f32>>,
    last: Vec<Vec<f32>>,
}

impl Scratch {
    /// Starts a step with the buffers the previous step on this thread left.
    pub fn begin() -> Scratch {
        Scratch {
            free: Vec::new(),
            last: SPARE.with(|s| s.take()),
        }
    }

    /// A buffer of `len` values with unspecified contents, for an output written in full.
    pub fn take(&mut self, len: usize) -> Vec<f32> {
        for list in [&mut self.free, &mut self.last] {
            if let Some(i) = list.iter().position(|b| b.len() == len) {
                return list.swap_remove(i);
            }
        }
        vec![0.0; len]
    }

    /// Hands a buffer back for reuse later in this step or in the next.
    pub fn give(&mut self, buf: Vec<f32>) {
        self.free.push(buf);
    }
}

/// Frees the buffers the fused step keeps on this thread for its next call.
pub fn release() {
    SPARE.with(|s| s.take());
}

impl Drop for Scratch {
    /// Keeps what this step gave back for the next one; the last step's buffers that went
    /// unused (other shapes) are freed.
    fn drop(&mut self) {
        let free = std::mem::take(&mut self.free);
        SPARE.with(|s| *s.borrow_mut() = free);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_by_length_and_unused_ones_dropped() {
        let mut ws = Scratch::begin();
        let a = ws.take(10);
        let ptr = a.as_ptr();
        ws.give(a);
        let b = ws.take(10);
        assert_eq!(b.as_ptr(), ptr, "reused within a step");
        ws.give(b);
        ws.give(vec![1.0; 3]);
        drop(ws);
        let mut ws = Scratch::begin();
        let c = ws.take(10);
        assert_eq!(c.as_ptr(), ptr, "reused by the next step");
        assert_eq!(ws.take(7).len(), 7);
        drop(ws);
        // Neither the 3-long buffer (not taken) nor anything else was given back.
        let mut ws = Scratch::begin();
        assert!(ws.last.is_empty());
        let d = ws.take(5);
        ws.give(d);
        drop(ws);
        release();
        assert!(Scratch::begin().last.is_empty(), "released");
    }
}
