//! The seed's topology fetcher: asks every network's controller for its topology and
//! saves them all in the `topology` table with the run's start time.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tgrun_sdk::prelude::*;
use tgrun_sdk::sql::Value;

#[derive(Deserialize)]
struct Params {}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS topology (
    id INT AUTO_INCREMENT PRIMARY KEY,
    network_name VARCHAR(100) NOT NULL,
    topology JSON NOT NULL,
    last_updated DATETIME(3) NOT NULL)";

fn save_topology(ctx: &Ctx, _: Params) -> Result<()> {
    let results = api_service::request_all(
        "getTopology",
        &BTreeMap::new(),
        Some(Duration::from_secs(1)),
    )?;

    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (network_name, topology) in results {
        match topology {
            Ok(topology) => rows.push((network_name, topology)),
            Err(e) => {
                warn!("no topology from network '{network_name}': {e}");
                failed.push(network_name);
            }
        }
    }

    if !rows.is_empty() {
        let last_updated = sql::datetime_ms(ctx.start_time_ms);
        let placeholders = vec!["(?, ?, ?)"; rows.len()].join(", ");
        let mut params: Vec<Value> = Vec::new();
        for (network_name, topology) in rows {
            params.extend([network_name.into(), topology.into(), last_updated.clone()]);
        }
        sql::execute(CREATE, &[])?;
        sql::execute(
            &format!(
                "INSERT INTO topology (network_name, topology, last_updated) VALUES {placeholders}"
            ),
            &params,
        )?;
    }

    if !failed.is_empty() {
        bail!(
            "saved the others, but no topology from: {}",
            failed.join(", ")
        );
    }
    Ok(())
}

export_job!(save_topology);
