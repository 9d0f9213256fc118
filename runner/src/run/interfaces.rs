//! This machine's own addresses, every interface's (`getifaddrs`), read again at most once
//! a second: a job's request to one of them at the runner's port is a request to the
//! runner, and a name resolving to one of them reaches this machine.

#![allow(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reading of the interfaces stands (an address may come and go: DHCP, VPNs).
const FRESH: Duration = Duration::from_secs(1);

static READ: Mutex<Option<(Instant, Vec<IpAddr>)>> = Mutex::new(None);

/// Whether `ip` is an address of one of this machine's interfaces.
pub fn is_local(ip: IpAddr) -> bool {
    let mut read = READ.lock().unwrap_or_else(|e| e.into_inner());
    if read.as_ref().is_none_or(|(at, _)| at.elapsed() > FRESH) {
        *read = Some((Instant::now(), addresses()));
    }
    read.as_ref().is_some_and(|(_, addrs)| addrs.contains(&ip))
}

/// Every interface's addresses now; none if the kernel will not say.
pub fn addresses() -> Vec<IpAddr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list it allocates into `head`, freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        tracing::warn!(
            "reading this machine's addresses: {}",
            std::io::Error::last_os_error()
        );
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut at = head;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list, alive until freeifaddrs; an address is read
        // as the structure its family names.
        unsafe {
            let addr = (*at).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        found.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        found.push(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            at = (*at).ifa_next;
        }
    }
    // SAFETY: the list getifaddrs made, freed once.
    unsafe { libc::freeifaddrs(head) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_this_machines_addresses() {
        assert!(addresses().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(is_local(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(!is_local("192.0.2.200".parse().unwrap()));
    }
}
