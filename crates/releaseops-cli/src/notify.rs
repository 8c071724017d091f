//! The webhooks of `notify:` told what a command's change gave rise to,
//! after the change has landed: a few seconds at most, then the command
//! exits whatever the webhooks do; what failed is a warning, never a
//! failure of the command, and names the webhook, never its URL.

use std::time::Duration;

use releaseops_core::notify::Notice;

/// How long a command waits for its notices to be delivered.
const WAIT: Duration = Duration::from_secs(5);

pub(crate) fn tell(store: &releaseops_store::Store, notices: Vec<Notice>) {
    let targets = &store.config().notify;
    if targets.is_empty() || notices.is_empty() {
        return;
    }
    let n = releaseops_notify::Notifier::new(targets, |v| std::env::var(v).ok());
    n.send(&notices);
    let r = n.finish(WAIT);
    for u in &r.unset {
        crate::output::warn(&format!("not notified: {u}"));
    }
    for f in &r.failed {
        crate::output::warn(&format!("notification failed: {f}"));
    }
    if r.pending > 0 {
        crate::output::warn(&format!(
            "{} notification(s) not delivered within {} s; the change itself is done",
            r.pending,
            WAIT.as_secs()
        ));
    }
    if r.dropped > 0 {
        crate::output::warn(&format!(
            "{} notification(s) dropped: the queue was full",
            r.dropped
        ));
    }
}
