//! The metrics jobs write, served at `GET /metrics` for Prometheus to scrape.
//!
//! Unlike tglib, a scrape does not clear the cache: two Prometheus servers scraping the same
//! runner both see every value. A series stays until a job overwrites it or until it expires
//! (`runner.metrics_ttl_s`). A per-job cap on series stops one job from flooding the cache.

mod cache;
mod exposition;
pub mod process;

pub use cache::{MetricsCache, Sample, WriteRefused};
pub use exposition::{escape_label_value, format_value, series_key};
