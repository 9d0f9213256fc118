//! A job's overlap policy: what a due run does when the job's previous run is still
//! queued, running or waiting to retry (applied by the scheduler, or across a cluster).

/// Runs a `queue` job may hold back behind its running one; past it, due runs are skipped.
pub const MAX_WAITING: usize = 16;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// The new run is skipped (counted as `skipped` in metrics and history). Default.
    #[default]
    Skip,
    /// The new run waits and starts when the previous one ends (at most [`MAX_WAITING`]
    /// wait; past that, skipped). Runs of the job never overlap.
    Queue,
    /// The previous run is cancelled (outcome `cancelled`) and the new one starts.
    Replace,
    /// Runs may overlap (bounded by the queue and the consumers).
    Allow,
}

impl Overlap {
    pub const NAMES: &[&str] = &["skip", "queue", "replace", "allow"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(Self::Skip),
            "queue" => Some(Self::Queue),
            "replace" => Some(Self::Replace),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }
}
