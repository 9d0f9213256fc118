//! Records kept per job ([`JobId`]: pipeline, place, module), found by a run's borrowed
//! names, so that recording a run allocates only for a job seen the first time.

use std::collections::BTreeMap;

use crate::run::JobId;

/// A `T` per job, by module name, then pipeline, then place.
#[derive(Debug)]
pub struct PerJob<T>(BTreeMap<String, BTreeMap<String, BTreeMap<usize, T>>>);

impl<T> Default for PerJob<T> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<T: Default> PerJob<T> {
    /// The record of the job at `index` of `pipeline` running module `name`, made if new.
    pub fn entry(&mut self, name: &str, pipeline: &str, index: usize) -> &mut T {
        // Looked up before inserting: a known job's names are not copied.
        if !self.0.contains_key(name) {
            self.0.insert(name.to_owned(), BTreeMap::new());
        }
        let pipelines = self.0.get_mut(name).expect("inserted above");
        if !pipelines.contains_key(pipeline) {
            pipelines.insert(pipeline.to_owned(), BTreeMap::new());
        }
        let places = pipelines.get_mut(pipeline).expect("inserted above");
        places.entry(index).or_default()
    }
}

impl<T> PerJob<T> {
    pub fn get(&self, id: &JobId) -> Option<&T> {
        self.0.get(&*id.name)?.get(&*id.pipeline)?.get(&id.index)
    }

    /// Every record of module `name`, whatever its pipeline and place.
    pub fn of_module<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a T> + 'a {
        self.0
            .get(name)
            .into_iter()
            .flat_map(|pipelines| pipelines.values().flat_map(|places| places.values()))
    }

    /// The module names that have records, in order.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}
