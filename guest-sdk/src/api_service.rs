//! The Terragraph API service from a job: one controller per network.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//!
//! use serde_json::json;
//! use tgrun_sdk::prelude::*;
//!
//! fn topology(_: &Ctx, _: serde_json::Value) -> Result<()> {
//!     let networks = api_service::network_names()?;
//!     info!("{} networks", networks.len());
//!     // One network's controller.
//!     let one = api_service::request("east", "getNode", &json!({"name": "n1"}), None)?;
//!     info!("n1: {one}");
//!     // Every network at once: each answer (or error) kept apart, so one controller
//!     // being down does not lose the others.
//!     let all = api_service::request_all("getTopology", &BTreeMap::new(), Some(Duration::from_secs(5)))?;
//!     for (network, answer) in all {
//!         match answer {
//!             Ok(t) => info!("{network}: {} nodes", t["nodes"].as_array().map_or(0, Vec::len)),
//!             Err(e) => warn!("{network}: {e}"),
//!         }
//!     }
//!     // Only some networks, each with its own params.
//!     let params = BTreeMap::from([("west".to_owned(), json!({"name": "n9"}))]);
//!     let _some = api_service::request_many("getNode", &params, None)?;
//!     Ok(())
//! }
//!
//! export_job!(topology);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::Result;
use crate::error::{Error, lift};
use crate::wit::tgrun::job::api_service as host;

fn millis(timeout: Option<Duration>) -> Option<u32> {
    timeout.map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX))
}

fn to_wire(params: &BTreeMap<String, Value>) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

fn from_wire(results: Vec<host::NetworkResult>) -> BTreeMap<String, Result<Value>> {
    results
        .into_iter()
        .map(|r| {
            let answer = lift(r.response)
                .and_then(|s| serde_json::from_str::<Value>(&s).map_err(Error::from));
            (r.network, answer)
        })
        .collect()
}

/// The names of the networks the runner knows.
pub fn network_names() -> Result<Vec<String>> {
    lift(host::network_names())
}

/// POSTs `params` to `endpoint` (e.g. `getTopology`) of one network's controller.
pub fn request(
    network: &str,
    endpoint: &str,
    params: &Value,
    timeout: Option<Duration>,
) -> Result<Value> {
    let raw = lift(host::request(
        network,
        endpoint,
        &params.to_string(),
        millis(timeout),
    ))?;
    Ok(serde_json::from_str(&raw)?)
}

/// Every network, concurrently; a network missing from `params` gets `{}`. Each network's
/// answer or error is kept apart.
pub fn request_all(
    endpoint: &str,
    params: &BTreeMap<String, Value>,
    timeout: Option<Duration>,
) -> Result<BTreeMap<String, Result<Value>>> {
    let answers = lift(host::request_all(
        endpoint,
        &to_wire(params),
        millis(timeout),
    ))?;
    Ok(from_wire(answers))
}

/// Only the networks named in `params`, concurrently.
pub fn request_many(
    endpoint: &str,
    params: &BTreeMap<String, Value>,
    timeout: Option<Duration>,
) -> Result<BTreeMap<String, Result<Value>>> {
    let answers = lift(host::request_many(
        endpoint,
        &to_wire(params),
        millis(timeout),
    ))?;
    Ok(from_wire(answers))
}
