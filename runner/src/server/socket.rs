//! How long a client may leave the runner's answer unread: `TCP_USER_TIMEOUT` on each
//! accepted connection, so the kernel drops a connection whose data stays unacknowledged
//! (a reader that stopped reading: its window stays zero) past it, and the answer's memory
//! and charge ([`super::answers`]) go with it. The one `unsafe` of the server is here.

#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::time::Duration;

/// Sets `TCP_USER_TIMEOUT` to `timeout` on `stream` (Linux; elsewhere nothing).
pub fn send_timeout(stream: &tokio::net::TcpStream, timeout: Duration) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let ms = libc::c_uint::try_from(timeout.as_millis()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: a valid socket descriptor owned by `stream` for the call, and a pointer to
        // a c_uint of the length given, as setsockopt(2) and tcp(7) document.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                (&ms as *const libc::c_uint).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (stream, timeout);
    Ok(())
}
