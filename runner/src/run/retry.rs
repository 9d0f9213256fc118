//! Retries of a failed run, off by default: `retries` more attempts, each after a backoff
//! that doubles (`retry_backoff_s`, 2×, 4×, ... up to an hour).

use std::time::Duration;

/// Most retries a job may ask for.
pub const MAX_RETRIES: u32 = 10;
/// Longest wait before a retry.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt (0: none).
    pub max: u32,
    /// Wait before the first retry.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max: 0,
            backoff: Self::DEFAULT_BACKOFF,
        }
    }
}

impl Retry {
    pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(5);

    /// The wait before attempt `next` (2 for the first retry), if the job has one left.
    pub fn delay_before(&self, next: u32) -> Option<Duration> {
        if next < 2 || next > self.max + 1 {
            return None;
        }
        let doublings = (next - 2).min(20);
        Some(self.backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_after_max() {
        let r = Retry {
            max: 3,
            backoff: Duration::from_secs(2),
        };
        assert_eq!(r.delay_before(2), Some(Duration::from_secs(2)));
        assert_eq!(r.delay_before(3), Some(Duration::from_secs(4)));
        assert_eq!(r.delay_before(4), Some(Duration::from_secs(8)));
        assert_eq!(r.delay_before(5), None);
        assert_eq!(Retry::default().delay_before(2), None);
        let long = Retry {
            max: 10,
            backoff: Duration::from_secs(600),
        };
        assert_eq!(long.delay_before(11), Some(MAX_BACKOFF));
    }
}
