//! The process's allocator: mimalloc, asked through its plain entry points whenever every block
//! it hands out already has the alignment asked for.
//!
//! `mimalloc::MiMalloc` passes every allocation to `mi_malloc_aligned`. That entry point takes a
//! fast path only for blocks of at most 1 KiB; a larger block whose size class is not a power of
//! two (an issue request's boxed future, 1.1 kB, is one; about three blocks of an issue request
//! are) goes through its over-allocating path instead, about 260 instructions where `mi_malloc`
//! takes a few dozen (docs/request-cost.md). Every mimalloc block of 16 bytes or more starts on a
//! 16-byte boundary, and a smaller one on a boundary of its size class (a multiple of the word),
//! so an alignment of at most 16 that is at most the size needs nothing but `mi_malloc`; any
//! other layout still goes to the aligned entry points.
//!
//! This module is the workspace's only `unsafe` code: an allocator cannot be written without it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment of every mimalloc block of at least this size (`MI_MAX_ALIGN_SIZE`).
const BLOCK_ALIGN: usize = 16;

/// mimalloc, through `mi_malloc` where its blocks are aligned enough (see the module doc).
pub struct Allocator;

/// Whether a plain mimalloc block of `size` bytes is aligned to `align`.
fn plain(size: usize, align: usize) -> bool {
    align <= BLOCK_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc, aligned as its layout asks (plain blocks by
// mimalloc's guarantee above, the rest by its aligned entry points), and is given back to
// `mi_free`, which takes blocks from either.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls; mimalloc answers null when out of memory, as `alloc` may.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (the caller's contract), so by mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is a live block of this allocator (the caller's contract); the new block
        // keeps the layout's alignment as `alloc` would give it.
        unsafe {
            if plain(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block is aligned as asked, holds what is written to it, and survives a grow.
    #[test]
    fn blocks_are_aligned_as_their_layout_asks() {
        let a = Allocator;
        let mut held = Vec::new();
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in (1..=64).chain([100, 1000, 1024, 1100, 1500, 4000, 70_000, 1 << 20]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                for zeroed in [false, true] {
                    // SAFETY: a non-zero size; the block is written within its size and freed
                    // once with its layout.
                    unsafe {
                        let p = if zeroed {
                            a.alloc_zeroed(layout)
                        } else {
                            a.alloc(layout)
                        };
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0, "size {size}, align {align}");
                        if zeroed {
                            assert!((0..size).all(|i| *p.add(i) == 0));
                        }
                        p.write_bytes(0xA5, size);
                        let grown = a.realloc(p, layout, size * 3);
                        assert_eq!(grown as usize % align, 0, "grown {size}, align {align}");
                        assert!((0..size).all(|i| *grown.add(i) == 0xA5));
                        held.push((grown, Layout::from_size_align(size * 3, align).unwrap()));
                    }
                }
            }
        }
        for (p, layout) in held {
            // SAFETY: each block once, with the layout it has now.
            unsafe { a.dealloc(p, layout) }
        }
    }
}
