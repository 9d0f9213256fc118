//! Route requests in flight: at most a route's `max_concurrent` at once, and at most
//! [`ROUTE_INSTANCES`] for all routes together, so that a flood of requests to a slow route
//! never takes the instances the scheduler's consumers need. A request past either limit is
//! answered 503 at once, not queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::service::ROUTE_INSTANCES;

/// Requests in flight, per route and in all.
#[derive(Default)]
pub struct RouteSlots {
    in_flight: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_route: HashMap<String, usize>,
}

/// A request's place; given back when dropped, however the request ends.
pub struct RouteSlot {
    slots: Arc<RouteSlots>,
    route: String,
}

/// Why a request found no place.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The route has `max_concurrent` requests in flight.
    Route(usize),
    /// All routes together hold [`ROUTE_INSTANCES`].
    All,
}

impl RouteSlots {
    /// A place for one request to `route`, if it has fewer than `most` in flight and all
    /// routes fewer than [`ROUTE_INSTANCES`].
    pub fn take(self: &Arc<Self>, route: &str, most: usize) -> Result<RouteSlot, Full> {
        let mut c = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let here = c.per_route.get(route).copied().unwrap_or(0);
        if here >= most {
            return Err(Full::Route(most));
        }
        if c.total >= ROUTE_INSTANCES {
            return Err(Full::All);
        }
        c.total += 1;
        *c.per_route.entry(route.to_owned()).or_default() += 1;
        Ok(RouteSlot {
            slots: self.clone(),
            route: route.to_owned(),
        })
    }
}

impl Drop for RouteSlot {
    fn drop(&mut self) {
        let mut c = self
            .slots
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.per_route.get_mut(&self.route) {
            *n -= 1;
            if *n == 0 {
                c.per_route.remove(&self.route);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_and_all_routes_are_bounded_and_places_come_back() {
        let slots = Arc::new(RouteSlots::default());
        let a: Vec<_> = (0..2).map(|_| slots.take("GET /a", 2).unwrap()).collect();
        assert_eq!(slots.take("GET /a", 2).err(), Some(Full::Route(2)));
        drop(a);
        let held: Vec<_> = (0..ROUTE_INSTANCES)
            .map(|i| slots.take(&format!("GET /{i}"), 1).unwrap())
            .collect();
        assert_eq!(slots.take("GET /b", 8).err(), Some(Full::All));
        drop(held);
        assert!(slots.take("GET /b", 8).is_ok());
        let c = slots.in_flight.lock().unwrap();
        assert_eq!((c.total, c.per_route.len()), (0, 0));
    }
}
