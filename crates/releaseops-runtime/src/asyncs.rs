//! The loader for tokio code. A cached load answers inline; a load that has
//! to read the store runs on the blocking pool. [`scope`] makes the bundle
//! the task's current one, visible to everything the future awaits
//! ([`current`]), which is what the existing tool's async loader lost.

use std::future::Future;
use std::sync::Arc;

use crate::bundle::LoadedBundle;
use crate::error::LoadError;
use crate::loader::RuntimeLoader;

tokio::task_local! {
    static CURRENT: Arc<LoadedBundle>;
}

/// [`RuntimeLoader`] for async code; `Send + Sync`, cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncRuntimeLoader {
    loader: RuntimeLoader,
}

impl AsyncRuntimeLoader {
    pub fn new(loader: RuntimeLoader) -> AsyncRuntimeLoader {
        AsyncRuntimeLoader { loader }
    }

    pub fn blocking(&self) -> &RuntimeLoader {
        &self.loader
    }

    /// Loads `id@env` or `id==version` without blocking the runtime's threads.
    pub async fn load(&self, reference: &str) -> Result<Arc<LoadedBundle>, LoadError> {
        let loader = self.loader.clone();
        let reference = reference.to_string();
        match tokio::task::spawn_blocking(move || loader.load(&reference)).await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Loads `reference` and runs `f` with it as the task's current bundle.
    pub async fn scope<F: Future>(&self, reference: &str, f: F) -> Result<F::Output, LoadError> {
        let bundle = self.load(reference).await?;
        Ok(scope(bundle, f).await)
    }
}

/// Runs `f` with `bundle` as the current bundle of the task.
pub async fn scope<F: Future>(bundle: Arc<LoadedBundle>, f: F) -> F::Output {
    CURRENT.scope(bundle, f).await
}

/// The bundle of the innermost [`scope`] this task is in.
pub fn current() -> Option<Arc<LoadedBundle>> {
    CURRENT.try_with(Arc::clone).ok()
}
