//! Test hooks, compiled in only with the `test-hooks` feature (this crate's own tests turn it
//! on): switching the isolation conflict checks off, so the isolation checker can show it
//! catches what they prevent; and pausing a committer at points of the commit path, so a
//! test can interleave other transactions there deterministically. Without the feature the
//! state below stays at its defaults and nothing calls into it.

use std::fmt;
use std::sync::atomic::AtomicBool;
#[cfg(feature = "test-hooks")]
use {parking_lot::Mutex, std::sync::Arc};

/// A point of the commit path where the commit hook is called.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPoint {
    /// Conflict checks and validation passed; the writer lock is held, the seq not yet given.
    Validated,
    /// The transaction has its seq, is installed (invisible) and queued; the writer lock is
    /// released and the committer is about to wait for durability (or lead the group commit).
    Queued,
}

/// A function called by every committer at each [`CommitPoint`] (on the committer's thread).
#[cfg(feature = "test-hooks")]
pub type CommitHook = Arc<dyn Fn(CommitPoint) + Send + Sync>;

/// The hooks' state, held by the database.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Skip the isolation conflict checks.
    pub conflict_checks_off: AtomicBool,
    #[cfg(feature = "test-hooks")]
    commit: Mutex<Option<CommitHook>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Hooks");
        f.field("conflict_checks_off", &self.conflict_checks_off);
        #[cfg(feature = "test-hooks")]
        f.field("commit", &self.commit.lock().is_some());
        f.finish()
    }
}

#[cfg(feature = "test-hooks")]
impl Hooks {
    /// Call the commit hook, if one is set.
    pub fn at(&self, point: CommitPoint) {
        let hook = self.commit.lock().clone();
        if let Some(hook) = hook {
            hook(point);
        }
    }
}

#[cfg(feature = "test-hooks")]
impl crate::Database {
    /// Test hook: turn the isolation conflict checks off, so that REPEATABLE READ and
    /// SERIALIZABLE commit like READ COMMITTED, with stale reads. Never use it outside tests.
    pub fn set_conflict_checks(&self, on: bool) {
        self.hooks.conflict_checks_off.store(!on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Test hook: call `hook` on every committer's thread at each [`CommitPoint`] (`None`
    /// removes it). A hook that blocks pauses that commit there.
    pub fn set_commit_hook(&self, hook: Option<CommitHook>) {
        *self.hooks.commit.lock() = hook;
    }
}
