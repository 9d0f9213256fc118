//! Bench fixture: a job that does nothing, without std or WASI, so that its component is
//! one core module importing nothing but the types of the job world.

#![no_std]

extern crate alloc;

use alloc::string::String;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

// Generated code.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "job",
        pub_export_macro: true,
        default_bindings_module: "bindings",
    });
}
use bindings::{Guest, RunContext, export, tgrun};

/// Room for the arguments the runner hands `run` (its context and params).
const ARENA: usize = 64 * 1024;

/// A bump allocator: every run is a fresh instance, which gives everything back at once.
struct Bump(UnsafeCell<usize>);

// One thread per instance.
unsafe impl Sync for Bump {}

#[repr(align(16))]
struct Arena(UnsafeCell<[u8; ARENA]>);

unsafe impl Sync for Arena {}

static MEMORY: Arena = Arena(UnsafeCell::new([0; ARENA]));

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread; the offset only grows.
        let next = unsafe { &mut *self.0.get() };
        let start = (*next + layout.align() - 1) & !(layout.align() - 1);
        if start + layout.size() > ARENA {
            return core::ptr::null_mut();
        }
        *next = start + layout.size();
        // SAFETY: `start + size` is within the arena.
        unsafe { MEMORY.0.get().cast::<u8>().add(start) }
    }

    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump(UnsafeCell::new(0));

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator, over the bump allocator.
///
/// # Safety
/// Called by the runner as the canonical ABI says (a previous block, its size, alignment).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    if new_size == 0 {
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(new_size, align) else {
        core::arch::wasm32::unreachable()
    };
    // SAFETY: a non-zero size.
    let new = unsafe { ALLOCATOR.alloc(layout) };
    if new.is_null() {
        core::arch::wasm32::unreachable()
    }
    if !old.is_null() && old_size > 0 {
        // SAFETY: both blocks are at least `min(old_size, new_size)` long and distinct.
        unsafe { core::ptr::copy_nonoverlapping(old, new, old_size.min(new_size)) };
    }
    new
}

struct Noop;

impl Guest for Noop {
    fn run(_ctx: RunContext, _params: String) -> Result<(), tgrun::job::types::Error> {
        Ok(())
    }
}

export!(Noop);
