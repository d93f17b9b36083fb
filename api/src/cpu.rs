//! CPU-heavy request work (compiling rules, scanning sample events) runs here: on the
//! blocking pool, a bounded number of jobs at a time, so no request can stall the async
//! workers that serve `/health` and everyone else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flagstream_rules::{Rule, RuleSet};
use tokio::sync::Semaphore;

use crate::Error;

pub struct CpuPool {
    permits: Arc<Semaphore>,
    /// How long a job may wait for a permit before the caller is told to retry.
    wait: Duration,
}

/// Set when the request that started a job is gone (it timed out or the client left); a
/// job that loops checks it and stops early.
pub type Cancelled = Arc<AtomicBool>;

struct CancelOnDrop(Cancelled);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl CpuPool {
    pub fn new(jobs: usize, wait: Duration) -> CpuPool {
        CpuPool {
            permits: Arc::new(Semaphore::new(jobs.max(1))),
            wait,
        }
    }

    /// Runs `job` on the blocking pool once a permit is free. The permit is held until the
    /// job ends, even if the request is dropped first, so the bound holds.
    pub async fn run<T, F>(&self, job: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&AtomicBool) -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                Error::Unavailable("the API is busy compiling rules; retry shortly".into())
            })?
            .map_err(|_| Error::Internal("the CPU pool is closed".into()))?;
        let cancelled: Cancelled = Arc::default();
        let _guard = CancelOnDrop(cancelled.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(&cancelled)
        })
        .await
        .map_err(|e| Error::Internal(format!("a CPU job failed: {e}")))
    }

    /// Compiles `rules` into a set; a compile error is the caller's (422 on `rule`).
    pub async fn compile(&self, rules: Vec<Rule>) -> Result<RuleSet, Error> {
        self.run(move |_| RuleSet::build(rules))
            .await?
            .map_err(|e| Error::invalid("rule", e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// On a single-threaded runtime a job that ran inline would block everything else.
    #[tokio::test(flavor = "current_thread")]
    async fn jobs_leave_the_runtime_free_are_bounded_and_see_cancellation() {
        let pool = Arc::new(CpuPool::new(1, Duration::from_millis(100)));
        let (release, wait) = mpsc::channel::<()>();
        let (report, cancelled) = mpsc::channel::<bool>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move |cancelled| {
                    wait.recv().unwrap();
                    report.send(cancelled.load(Ordering::Relaxed)).unwrap();
                })
                .await
            }
        });
        // The runtime still serves other tasks while the job blocks.
        assert_eq!(tokio::spawn(async { 7 }).await.unwrap(), 7);
        // The one permit is taken: a second job is refused after its wait.
        while pool.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(|_| ()).await.unwrap_err();
        assert!(matches!(refused, Error::Unavailable(_)), "{refused:?}");
        // The request behind the first job goes away: the job is told.
        busy.abort();
        let _ = busy.await;
        release.send(()).unwrap();
        assert!(cancelled.recv().unwrap());
    }
}
