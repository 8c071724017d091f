//! Streams: a long poll that answers when an environment pointer moves,
//! and the server-sent event stream of the history.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatchQuery {
    /// Seconds to hold the request (default 30, at most 300).
    timeout: Option<u64>,
}

/// Long poll: answers at once when the client's `If-None-Match` is not what
/// the environment runs; otherwise holds the request until the pointer
/// moves (200 with the new bundle) or the timeout passes (304).
pub(super) async fn watch(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<WatchQuery>, QueryRejection>,
) -> Response {
    let r = async {
        s.authorize(&headers, Role::Viewer)?;
        let reference = path(p)?;
        let q = query(q)?;
        if reference.len() <= crate::MAX_REFERENCE_LEN
            && matches!(BundleRef::parse(&reference)?, BundleRef::Pinned { .. })
        {
            return Err(ApiError::bad_request(
                format!("{reference} is a pinned version: it never moves"),
                "watch ID@ENV",
            ));
        }
        let timeout = Duration::from_secs(q.timeout.unwrap_or(30).clamp(1, 300));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut snapshots = s.snapshots.clone();
        snapshots.borrow_and_update();
        let mut shutdown = s.shutdown.clone();
        let _slot = long_lived(&s)?;
        let _watching = s.watching.enter();
        loop {
            let b = s.bundle(&reference).await?;
            if !not_modified(&headers, &s.rendered(&b).etag) {
                return Ok(bundle_response(&s, &b, &headers));
            }
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return Ok(bundle_response(&s, &b, &headers));
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Ok(bundle_response(&s, &b, &headers)),
                _ = shutdown.wait_for(|stop| *stop) => return Ok(bundle_response(&s, &b, &headers)),
            }
        }
    }
    .await;
    respond(r)
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    env: Option<String>,
    bundle: Option<String>,
}

impl EventsQuery {
    fn keeps(&self, env: &str, bundle: &str) -> bool {
        self.env.as_deref().is_none_or(|e| e == env)
            && self.bundle.as_deref().is_none_or(|b| b == bundle)
    }

    fn snapshot_event(&self, snap: &crate::watch::Snapshot) -> Event {
        let envs: serde_json::Map<String, Value> = snap
            .environments
            .iter()
            .filter(|(e, _)| self.env.as_deref().is_none_or(|x| x == e.as_str()))
            .map(|(e, m)| {
                let m: serde_json::Map<String, Value> = m
                    .iter()
                    .filter(|(b, _)| self.keeps(e, b))
                    .map(|(b, v)| (b.clone(), json!(v)))
                    .collect();
                (e.clone(), Value::Object(m))
            })
            .collect();
        Event::default()
            .event("snapshot")
            .id(snap.seq.to_string())
            .data(json!({"seq": snap.seq, "environments": envs}).to_string())
    }
}

/// A slot for a request that stays open (a watch, an event stream), or 503
/// when half the connections are held by them already.
pub(super) fn long_lived(s: &AppState) -> ApiResult<crate::Counted> {
    s.long_lived.try_enter(s.max_long_lived).ok_or_else(|| {
        ApiError::new(
            ErrorKind::Busy,
            format!(
                "{} watches and event streams are open already, the most this server keeps",
                s.max_long_lived
            ),
            "try again later, or start the server with a larger --max-connections",
        )
    })
}

/// Server-sent events: a `snapshot` of the pointers first, then one `moved`
/// event per pointer that moves (filtered by `env` and `bundle`). A client
/// that falls behind gets a fresh snapshot.
pub(super) async fn events(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let r = async {
        s.authorize(&headers, Role::Viewer)?;
        let q = query(q)?;
        if let Some(e) = &q.env {
            env_name(e)?;
        }
        if let Some(b) = &q.bundle {
            names::validate_bundle_id(b)?;
        }
        // Subscribe before the snapshot, so nothing falls between them.
        let moves = s.moves.subscribe();
        let first = q.snapshot_event(&s.snapshots.borrow());
        // Counted while the stream lives (it is dropped when the client goes).
        let open = (long_lived(&s)?, s.streams.enter());
        let state = (
            Some(first),
            moves,
            s.shutdown.clone(),
            s.snapshots.clone(),
            (q, open),
        );
        let stream = futures_util::stream::unfold(
            state,
            |(first, mut moves, mut shutdown, snaps, (q, open))| async move {
                let q = (q, open);
                if let Some(ev) = first {
                    return Some((Ok::<_, Infallible>(ev), (None, moves, shutdown, snaps, q)));
                }
                let (filter, _) = &q;
                loop {
                    if *shutdown.borrow() {
                        return None;
                    }
                    tokio::select! {
                        m = moves.recv() => match m {
                            Ok(m) if filter.keeps(&m.env, &m.bundle_id) => {
                                let ev = Event::default()
                                    .event("moved")
                                    .id(m.seq.to_string())
                                    .data(serde_json::to_string(&m).unwrap_or_default());
                                return Some((Ok(ev), (None, moves, shutdown, snaps, q)));
                            }
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                let ev = filter.snapshot_event(&snaps.borrow());
                                return Some((Ok(ev), (None, moves, shutdown, snaps, q)));
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        },
                        _ = shutdown.changed() => {}
                    }
                }
            },
        );
        Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
    }
    .await;
    respond(r)
}
