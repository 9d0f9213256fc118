//! Integration tests: real components from `jobs-wasm/` (built by `make jobs`) run in the
//! real sandbox, scheduler, CLI and HTTP server.

mod api_service;
mod build;
mod cli;
mod cluster;
mod config;
mod dashboard;
mod deploy;
mod environment;
mod fixtures;
mod fuzz_calls;
mod history;
mod hostile;
mod hotswap;
mod outbound_http;
mod policies;
mod prometheus;
mod python;
mod real_prometheus;
mod routes;
mod sandbox;
mod scheduler;
mod server;
mod sql;
mod sql_bounds;
mod standin;
mod tglib_services;
