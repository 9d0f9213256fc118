//! Client health for the dashboard, cached: every open page polls every 2 s, and a client
//! that is down answers only at its timeout, so a poll must not wait on the clients.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::server::routes::basic::clients_health;
use crate::service::Service;

/// How old an answer may be before it is asked again (in the background).
const FRESH: Duration = Duration::from_secs(5);

type Report = Vec<(&'static str, bool)>;

#[derive(Default)]
pub struct HealthCache {
    last: Mutex<Option<(Instant, Report)>>,
    asking: Arc<AtomicBool>,
}

impl HealthCache {
    /// The last answer; one older than [`FRESH`] is asked again in the background and
    /// answered meanwhile. Only the very first poll waits for the clients.
    pub async fn get(self: &Arc<Self>, service: &Arc<Service>) -> Report {
        let cached = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match cached {
            Some((at, report)) => {
                if at.elapsed() > FRESH && !self.asking.swap(true, Ordering::AcqRel) {
                    let (me, service) = (self.clone(), service.clone());
                    tokio::spawn(async move {
                        me.ask(&service).await;
                    });
                }
                report
            }
            None => self.ask(service).await,
        }
    }

    async fn ask(&self, service: &Service) -> Report {
        let report = clients_health(service).await;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), report.clone()));
        self.asking.store(false, Ordering::Release);
        report
    }
}
