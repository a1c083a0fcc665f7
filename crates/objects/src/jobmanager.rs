//! `concoord.object.jobmanager.JobManager`: a replicated registry of jobs
//! and their states.

use concoord_macros::object;
pub use concoord_object::ready_made::{Job, JobError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Jobs by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobManager {
    jobs: BTreeMap<String, Job>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.jobmanager.JobManager"
)]
impl JobManager {
    /// Adds a job in state "scheduled".
    pub fn schedule(&mut self, id: String, spec: String) -> Result<(), JobError> {
        if self.jobs.contains_key(&id) {
            return Err(JobError::Exists(id));
        }
        let job = Job {
            id: id.clone(),
            spec,
            state: "scheduled".into(),
        };
        self.jobs.insert(id, job);
        Ok(())
    }

    /// Removes a job; returns it.
    pub fn deschedule(&mut self, id: String) -> Result<Job, JobError> {
        self.jobs.remove(&id).ok_or(JobError::NoSuchJob(id))
    }

    /// Sets a job's state.
    pub fn update(&mut self, id: String, state: String) -> Result<(), JobError> {
        let job = self.jobs.get_mut(&id).ok_or(JobError::NoSuchJob(id))?;
        job.state = state;
        Ok(())
    }

    /// One job.
    pub fn get_job(&self, id: String) -> Result<Job, JobError> {
        self.jobs.get(&id).cloned().ok_or(JobError::NoSuchJob(id))
    }

    /// Every job, by id.
    pub fn list_jobs(&self) -> Vec<Job> {
        self.jobs.values().cloned().collect()
    }
}
