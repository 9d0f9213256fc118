//! Bytes of large answers in flight (`GET /runs`): charged before the answer is read from
//! the database, held until the client has taken the answer's last chunk (or gone), and
//! bounded in all and per client. A reader that asks and never reads pins at most its
//! share; past the bound a request is answered 503 at once, never by the runner growing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};

/// Bytes all answers in flight may hold, and one client's answers.
pub const MAX_TOTAL_BYTES: usize = 64 << 20;
pub const MAX_CLIENT_BYTES: usize = 16 << 20;
/// What the server hands the connection at a time: what stays buffered past the charge
/// once the answer's last chunk has been taken.
const CHUNK: usize = 64 << 10;

#[derive(Debug)]
pub struct AnswerBudget {
    total: usize,
    per_client: usize,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

impl Default for AnswerBudget {
    fn default() -> Self {
        Self::new(MAX_TOTAL_BYTES, MAX_CLIENT_BYTES)
    }
}

/// Why an answer was not given now.
#[derive(Debug, thiserror::Error)]
pub enum Full {
    #[error(
        "answers to this client hold {used} bytes not yet read; at most {max} (read them, or ask for fewer rows)"
    )]
    Client { used: usize, max: usize },
    #[error("answers in flight hold {used} bytes; at most {max}: try again")]
    All { used: usize, max: usize },
}

impl AnswerBudget {
    pub fn new(total: usize, per_client: usize) -> Self {
        Self {
            total,
            per_client,
            used: Mutex::default(),
        }
    }

    /// Takes `bytes` for `client`, or says which bound it would pass.
    pub fn charge(self: &Arc<Self>, client: IpAddr, bytes: usize) -> Result<Charge, Full> {
        let mut charge = Charge {
            budget: self.clone(),
            client,
            bytes: 0,
        };
        charge.resize(bytes)?;
        Ok(charge)
    }

    /// Bytes held now, in all.
    pub fn in_flight(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bytes held for one answer; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<AnswerBudget>,
    client: IpAddr,
    bytes: usize,
}

impl Charge {
    /// Holds `bytes` instead: less is always granted, more only within both bounds.
    pub fn resize(&mut self, bytes: usize) -> Result<(), Full> {
        let b = &self.budget;
        let mut used = b.lock();
        let client = used.by_client.get(&self.client).copied().unwrap_or(0);
        let (client_after, total_after) =
            (client - self.bytes + bytes, used.total - self.bytes + bytes);
        if bytes > self.bytes {
            if client_after > b.per_client {
                return Err(Full::Client {
                    used: client,
                    max: b.per_client,
                });
            }
            if total_after > b.total {
                return Err(Full::All {
                    used: used.total,
                    max: b.total,
                });
            }
        }
        used.total = total_after;
        if client_after == 0 {
            used.by_client.remove(&self.client);
        } else {
            used.by_client.insert(self.client, client_after);
        }
        self.bytes = bytes;
        Ok(())
    }

    /// `answer` as a body that keeps this charge until its last chunk is taken or the
    /// connection is gone. Each chunk is a copy: the connection's buffer never holds the
    /// whole answer alive past the charge.
    pub fn body(self, answer: Vec<u8>) -> Body {
        let state = (answer, 0usize, self);
        Body::from_stream(futures_util::stream::unfold(
            state,
            |(answer, at, charge)| async move {
                if at >= answer.len() {
                    drop(charge);
                    return None;
                }
                let end = (at + CHUNK).min(answer.len());
                let chunk = Bytes::copy_from_slice(&answer[at..end]);
                Some((
                    Ok::<_, std::convert::Infallible>(chunk),
                    (answer, end, charge),
                ))
            },
        ))
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let _ = self.resize(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_bounded_per_client_and_in_all_and_given_back() {
        let budget = Arc::new(AnswerBudget::new(100, 60));
        let (a, b, c) = (
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "::1".parse().unwrap(),
        );
        let first = budget.charge(a, 50).unwrap();
        assert!(matches!(
            budget.charge(a, 20),
            Err(Full::Client { used: 50, max: 60 })
        ));
        let mut second = budget.charge(b, 40).unwrap();
        assert!(matches!(
            budget.charge(c, 20),
            Err(Full::All { used: 90, max: 100 })
        ));
        // Shrinking is always granted; growing past the bound is not, and keeps the charge.
        second.resize(10).unwrap();
        assert!(second.resize(70).is_err());
        assert_eq!(budget.in_flight(), 60);
        let third = budget.charge(c, 40).unwrap();
        drop((first, second, third));
        assert_eq!(budget.in_flight(), 0);
        assert!(budget.lock().by_client.is_empty());
    }

    #[tokio::test]
    async fn a_body_holds_its_charge_until_it_is_read_or_dropped() {
        let budget = Arc::new(AnswerBudget::new(1 << 20, 1 << 20));
        let client = "127.0.0.1".parse().unwrap();
        let answer = vec![7u8; 3 * CHUNK + 5];
        let body = budget.charge(client, answer.len()).unwrap().body(answer);
        assert_eq!(budget.in_flight(), 3 * CHUNK + 5);
        let read = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(read.len(), 3 * CHUNK + 5);
        assert_eq!(budget.in_flight(), 0);
        // A client that goes away before reading: its body is dropped unread.
        let body = budget.charge(client, 10).unwrap().body(vec![1; 10]);
        assert_eq!(budget.in_flight(), 10);
        drop(body);
        assert_eq!(budget.in_flight(), 0);
    }
}
