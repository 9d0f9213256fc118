//! std's output and environment without WASI: a job's `print!`, `eprintln!` and panic
//! messages go to the runner through `logging.write-output`, and `std::env::var` finds
//! nothing, as the runner grants no environment.
//!
//! Why: Rust's std on wasm32-wasip2 reaches WASI only through wasi-libc's `write`,
//! `writev` and `getenv` for what every job has (the panic hook prints to stderr and reads
//! `RUST_BACKTRACE`). Those drew in 19 WASI imports (streams, terminals, environment, exit),
//! seven of them lowered through the component's shim module, which a fresh instance wired
//! on every run whether the job printed or not. Defined here, they are linked instead of
//! wasi-libc's, and a job that uses no other WASI is a component without WASI imports. A
//! job that does use more of WASI (clocks, random numbers) still gets it.
//!
//! Descriptors 1 and 2 are the only ones a job can have: the runner opens no files and no
//! sockets for it, so any other is answered `EBADF`, as wasi-libc would.

use crate::wit::tgrun::job::logging::{StdStream, write_output};

/// wasi-libc's `EBADF`.
const EBADF: i32 = 8;

unsafe extern "C" {
    /// wasi-libc's `errno`.
    fn __errno_location() -> *mut i32;
}

/// One `struct iovec` of wasi-libc.
#[repr(C)]
struct IoVec {
    base: *const u8,
    len: usize,
}

fn stream(fd: i32) -> Option<StdStream> {
    match fd {
        1 => Some(StdStream::Stdout),
        2 => Some(StdStream::Stderr),
        _ => None,
    }
}

fn bad_descriptor() -> isize {
    // SAFETY: wasi-libc's errno is a plain global; the guest has one thread.
    unsafe { *__errno_location() = EBADF };
    -1
}

/// POSIX `write`, for std's `Stdout` and `Stderr`.
///
/// # Safety
/// `buf` points to `len` readable bytes (the C contract).
#[unsafe(no_mangle)]
unsafe extern "C" fn write(fd: i32, buf: *const u8, len: usize) -> isize {
    let Some(to) = stream(fd) else {
        return bad_descriptor();
    };
    // A count must fit the signed result (POSIX leaves larger writes to the system): the
    // rest is the caller's to write again, as after any short write.
    let len = len.min(isize::MAX as usize);
    if len > 0 {
        // SAFETY: the caller's contract.
        write_output(to, unsafe { std::slice::from_raw_parts(buf, len) });
    }
    len as isize
}

/// POSIX `writev`, for std's vectored writes to `Stdout` and `Stderr`.
///
/// # Safety
/// `iov` points to `count` `iovec`s, each to its readable bytes (the C contract).
#[unsafe(no_mangle)]
unsafe extern "C" fn writev(fd: i32, iov: *const IoVec, count: i32) -> isize {
    let Some(to) = stream(fd) else {
        return bad_descriptor();
    };
    let mut written = 0usize;
    for i in 0..usize::try_from(count).unwrap_or(0) {
        // SAFETY: the caller's contract.
        let v = unsafe { &*iov.add(i) };
        // Short, as `write`, where the total would not fit the signed result.
        let len = v.len.min(isize::MAX as usize - written);
        if len > 0 {
            write_output(to, unsafe { std::slice::from_raw_parts(v.base, len) });
            written += len;
        }
        if len < v.len {
            break;
        }
    }
    written as isize
}

/// POSIX `getenv`: the runner gives a job no environment, so there is never a value.
///
/// # Safety
/// None beyond the C contract; `name` is not read.
#[unsafe(no_mangle)]
unsafe extern "C" fn getenv(_name: *const std::ffi::c_char) -> *mut std::ffi::c_char {
    std::ptr::null_mut()
}
