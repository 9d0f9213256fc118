//! Records kept per job ([`JobId`]: pipeline, place, name), found by a run's borrowed
//! names, so that recording a run allocates only for a job seen the first time.

use std::collections::BTreeMap;

use crate::run::JobId;

/// A `T` per job, by job name, then pipeline, then place.
#[derive(Debug)]
pub struct PerJob<T>(BTreeMap<String, BTreeMap<String, Places<T>>>);

impl<T> Default for PerJob<T> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<T: Default> PerJob<T> {
    /// The record of the job `name` at `index` of `pipeline`, made if new.
    pub fn entry(&mut self, name: &str, pipeline: &str, index: usize) -> &mut T {
        // Looked up before inserting: a known job's names are not copied.
        if !self.0.contains_key(name) {
            self.0.insert(name.to_owned(), BTreeMap::new());
        }
        let pipelines = self.0.get_mut(name).expect("inserted above");
        if !pipelines.contains_key(pipeline) {
            pipelines.insert(pipeline.to_owned(), Places::default());
        }
        let places = pipelines.get_mut(pipeline).expect("inserted above");
        places.entry(index)
    }
}

impl<T> PerJob<T> {
    pub fn get(&self, id: &JobId) -> Option<&T> {
        self.0.get(&*id.name)?.get(&*id.pipeline)?.get(id.index)
    }

    /// Every record of jobs named `name`, whatever their pipeline and place.
    pub fn of_name<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a T> + 'a {
        self.0
            .get(name)
            .into_iter()
            .flat_map(|pipelines| pipelines.values().flat_map(Places::values))
    }

    /// The job names that have records, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// A pipeline's places: the first [`DENSE`] by index in a vector (a lookup is one step
/// however long the pipeline's list), any later one in a map.
#[derive(Debug)]
struct Places<T> {
    dense: Vec<Option<T>>,
    sparse: BTreeMap<usize, T>,
}

/// Places kept in the vector: a list longer than this is unusual, and a place from the
/// cluster's stream must not make the vector huge.
const DENSE: usize = 4096;

impl<T> Default for Places<T> {
    fn default() -> Self {
        Self {
            dense: Vec::new(),
            sparse: BTreeMap::new(),
        }
    }
}

impl<T: Default> Places<T> {
    fn entry(&mut self, index: usize) -> &mut T {
        if index >= DENSE {
            return self.sparse.entry(index).or_default();
        }
        if self.dense.len() <= index {
            self.dense.resize_with(index + 1, || None);
        }
        self.dense[index].get_or_insert_with(T::default)
    }
}

impl<T> Places<T> {
    fn get(&self, index: usize) -> Option<&T> {
        match self.dense.get(index) {
            Some(place) => place.as_ref(),
            None => self.sparse.get(&index),
        }
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.dense.iter().flatten().chain(self.sparse.values())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn each_job_has_its_own_record_near_or_far_in_its_list() {
        let mut jobs: PerJob<u32> = PerJob::default();
        for (pipeline, index) in [("p", 0), ("p", 2), ("q", 0), ("p", DENSE + 7)] {
            *jobs.entry("m", pipeline, index) += 1 + index as u32;
        }
        *jobs.entry("m", "p", 2) += 10;
        let id = |p: &str, i: usize| JobId::new(&Arc::from(p), i, &Arc::from("m"));
        assert_eq!(jobs.get(&id("p", 0)), Some(&1));
        assert_eq!(jobs.get(&id("p", 1)), None);
        assert_eq!(jobs.get(&id("p", 2)), Some(&13));
        assert_eq!(jobs.get(&id("q", 0)), Some(&1));
        assert_eq!(jobs.get(&id("p", DENSE + 7)), Some(&(DENSE as u32 + 8)));
        assert_eq!(jobs.get(&id("p", DENSE)), None);
        let mut all: Vec<u32> = jobs.of_name("m").copied().collect();
        all.sort();
        assert_eq!(all, vec![1, 1, 13, DENSE as u32 + 8]);
        assert_eq!(jobs.names().collect::<Vec<_>>(), vec!["m"]);
    }
}
