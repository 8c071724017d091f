//! Reads: liveness, the API document, environments, bundles and what an
//! agent resolves, diffs, history, eval reports and the agent's records.

use super::*;

/// Liveness, and how many changes are running (shutdown waits for them).
pub(super) async fn health(State(s): St) -> Response {
    Json(json!({
        "status": if *s.shutdown.borrow() { "stopping" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "in_flight": s.inflight.count(),
        "watching": s.watching.count(),
        "event_streams": s.streams.count(),
        "connections": s.connections.count(),
        "notifications": notifications(&s.notifier.report()),
    }))
    .into_response()
}

/// What the webhooks got, as counts (`/healthz` needs no token: which
/// webhooks exist and why they fail is for the server's operator).
fn notifications(r: &releaseops_notify::Report) -> Value {
    json!({
        "delivered": r.delivered,
        "pending": r.pending,
        "dropped": r.dropped,
        "failed": r.failures,
        "not_configured": r.unset.len(),
    })
}

pub(super) async fn openapi(State(s): St) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        s.openapi.clone(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AtQuery {
    at: Option<String>,
}

pub(super) async fn environments(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<AtQuery>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        Ok((time_param("at", q.at.as_deref())?, q.at))
    };
    read(&s, &headers, args, |store, (at, text)| {
        let states = match at {
            Some(t) => envs::list_at(store, t)?,
            None => envs::list(store)?,
        };
        Ok(json!({"at": text, "environments": states}))
    })
    .await
}

pub(super) async fn environment(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let args = || {
        let env = path(p)?;
        env_name(&env)?;
        Ok(env)
    };
    read(&s, &headers, args, |store, env| {
        envs::list(store)?
            .into_iter()
            .find(|e| e.env == env)
            .ok_or_else(|| {
                ApiError::not_found(
                    format!("there is no environment '{env}'"),
                    "GET /v1/environments lists them",
                )
            })
    })
    .await
}

pub(super) async fn bundles(State(s): St, headers: HeaderMap) -> Response {
    read(
        &s,
        &headers,
        || Ok(()),
        |store, ()| Ok(bundle::list(store)?),
    )
    .await
}

pub(super) async fn manifest(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    read(
        &s,
        &headers,
        || path(p),
        |store, (id, version)| Ok(bundle::inspect(store, &id, &version)?.to_json()),
    )
    .await
}

/// True when `If-None-Match` names `etag` (weak comparison, as RFC 9110
/// asks for this header) or is `*`.
pub(super) fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(want) = etag.to_str().ok().map(|t| t.trim_matches('"')) else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            tag == "*"
                || tag
                    .strip_prefix("W/")
                    .unwrap_or(tag)
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    == Some(want)
        })
}

pub(super) fn bundle_response(s: &AppState, b: &LoadedBundle, headers: &HeaderMap) -> Response {
    let r = s.rendered(b);
    // Shared caches may keep an answer only when anyone may read it.
    let open = s.tokens.is_empty() || s.public_reads;
    let cache = match (b.environment().is_some(), open) {
        (true, true) => HeaderValue::from_static("no-cache"),
        (true, false) => HeaderValue::from_static("private, no-cache"),
        // A pinned version never changes.
        (false, true) => HeaderValue::from_static("public, max-age=31536000, immutable"),
        (false, false) => HeaderValue::from_static("private, max-age=31536000, immutable"),
    };
    let mut resp = if not_modified(headers, &r.etag) {
        let mut x = Response::new(Body::empty());
        *x.status_mut() = StatusCode::NOT_MODIFIED;
        x
    } else {
        let mut x = Response::new(Body::from(r.body));
        x.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        x
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, r.etag);
    h.insert(header::CACHE_CONTROL, cache);
    resp
}

pub(super) async fn resolve(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let r = async {
        s.authorize(&headers, Role::Viewer)?;
        let reference = path(p)?;
        let b = s.bundle(&reference).await?;
        Ok(bundle_response(&s, &b, &headers))
    }
    .await;
    respond(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffQuery {
    from: String,
    to: String,
}

pub(super) async fn diff(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        Ok((BundleRef::parse(&q.from)?, BundleRef::parse(&q.to)?))
    };
    read(&s, &headers, args, |store, (a, b)| {
        let a = version_of(store, &a)?;
        let b = version_of(store, &b)?;
        Ok(bundle::diff(store, (&a.0, &a.1), (&b.0, &b.1))?)
    })
    .await
}

/// `(id, version)` of a reference: an environment's pointer, read now.
pub(super) fn version_of(store: &Store, r: &BundleRef) -> ApiResult<(String, String)> {
    match r {
        BundleRef::Pinned { id, version } => Ok((id.clone(), version.clone())),
        BundleRef::Env { id, env } => {
            let file = store.load_env(env)?;
            let v = file.bundle_mappings.get(id).cloned().ok_or_else(|| {
                ApiError::not_found(
                    format!("{id} is not deployed in {env}"),
                    "GET /v1/environments shows what runs where",
                )
            })?;
            Ok((id.clone(), v))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryParams {
    bundle: Option<String>,
    env: Option<String>,
    event: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn history(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<HistoryParams>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        let event = q
            .event
            .as_deref()
            .map(envs::EventFilter::parse_named)
            .transpose()?;
        Ok(envs::HistoryQuery {
            bundle: q.bundle,
            env: q.env,
            event,
            actor: q.actor,
            since: time_param("since", q.since.as_deref())?,
            until: time_param("until", q.until.as_deref())?,
            limit: limit(q.limit, 100, 10_000),
        })
    };
    read(&s, &headers, args, |store, hq| {
        Ok(envs::history(store, &hq)?)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportsQuery {
    bundle: Option<String>,
    version: Option<String>,
    suite: Option<String>,
    limit: Option<usize>,
}

pub(super) fn run_id_ok(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 160
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            format!("'{id}' is not a run id"),
            "GET /v1/eval-reports lists the run ids",
        ))
    }
}

pub(super) fn read_report(
    store: &Store,
    entry: &releaseops_store::reports::ReportEntry,
) -> ApiResult<Value> {
    let bytes = store.read_report(entry).map_err(CoreError::from)?;
    Ok(releaseops_format::yaml::from_bytes(&bytes)?)
}

pub(super) async fn eval_reports(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<ReportsQuery>, QueryRejection>,
) -> Response {
    let args = || {
        let q = query(q)?;
        if let Some(b) = &q.bundle {
            names::validate_bundle_id(b)?;
        }
        if let Some(v) = &q.version {
            names::validate_version(v)?;
        }
        Ok(q)
    };
    read(&s, &headers, args, |store, q| {
        let filter = ReportFilter {
            bundle: q.bundle.as_deref(),
            version: q.version.as_deref(),
            suite: q.suite.as_deref(),
            run_id: None,
        };
        report_list(store, &filter, limit(q.limit, 50, 1000))
    })
    .await
}

/// The newest `n` reports `filter` matches: run id, bundle, version, suite
/// and summary each.
pub(super) fn report_list(
    store: &Store,
    filter: &ReportFilter<'_>,
    n: usize,
) -> ApiResult<Vec<Value>> {
    let found = store.find_reports(filter);
    let mut out = Vec::new();
    for e in found.iter().rev().take(n) {
        // The summary alone, kept while the report file stays as it is.
        let summary = store
            .read_report_with(e, "summary", |b| {
                releaseops_format::yaml::from_bytes::<Value>(b).map(|r| r.get("summary").cloned())
            })
            .map_err(CoreError::from)??;
        let key = e.run.as_ref();
        out.push(json!({
            "run_id": e.run_id,
            "bundle_id": key.map(|k| &k.bundle),
            "version": key.map(|k| &k.version),
            "suite": key.map(|k| &k.suite),
            "summary": summary,
        }));
    }
    Ok(out)
}

/// The report of run `id`.
pub(super) fn report_by_id(store: &Store, id: &str) -> ApiResult<Value> {
    run_id_ok(id)?;
    let found = store.find_reports(&ReportFilter {
        run_id: Some(id),
        ..Default::default()
    });
    let e = found.last().ok_or_else(|| {
        ApiError::not_found(
            format!("there is no eval report '{id}'"),
            "GET /v1/eval-reports lists them",
        )
    })?;
    read_report(store, e)
}

pub(super) async fn eval_report(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let args = || {
        let id = path(p)?;
        run_id_ok(&id)?;
        Ok(id)
    };
    read(&s, &headers, args, |store, id| report_by_id(store, &id)).await
}

/// The decision `id`; an id that names none is not found.
pub(super) fn decision_record(
    store: &Store,
    id: &str,
) -> ApiResult<releaseops_core::agent::DecisionRecord> {
    releaseops_core::agent::decision(store, id).map_err(|e| match e {
        CoreError::Invalid { message, hint } => ApiError {
            kind: ErrorKind::NotFound,
            message,
            hint,
            detail: None,
        },
        other => other.into(),
    })
}

pub(super) async fn decision(
    State(s): St,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> Response {
    let args = || {
        let id = path(p)?;
        if id.len() > 32 {
            return Err(ApiError::bad_request(
                "decision ids look like dec-000123",
                "GET /v1/agent/memory lists them",
            ));
        }
        Ok(id)
    };
    read(&s, &headers, args, |store, id| {
        Ok(decision_record(store, &id)?.summary_json())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemoryQuery {
    limit: Option<usize>,
}

pub(super) async fn memory(
    State(s): St,
    headers: HeaderMap,
    q: Result<Query<MemoryQuery>, QueryRejection>,
) -> Response {
    let args = || Ok(limit(query(q)?.limit, 20, 10_000));
    read(&s, &headers, args, |store, n| {
        let (head, episodes) = releaseops_core::agent::memory_view(store, n)?;
        Ok(json!({"head": head, "episodes": episodes}))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            m
        };
        let tag = HeaderValue::from_static("\"1.0.0@sha256:ab\"");
        assert!(not_modified(&h("\"1.0.0@sha256:ab\""), &tag));
        assert!(not_modified(&h("W/\"1.0.0@sha256:ab\""), &tag));
        assert!(not_modified(&h("\"x\", \"1.0.0@sha256:ab\""), &tag));
        assert!(not_modified(&h("*"), &tag));
        assert!(!not_modified(&h("\"1.0.1@sha256:ab\""), &tag));
        assert!(!not_modified(&h("1.0.0@sha256:ab"), &tag));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }

    #[test]
    fn run_ids_are_plain_names() {
        assert!(run_id_ok("20261121T090000Z-abc").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"x".repeat(200)] {
            assert!(run_id_ok(bad).is_err(), "{bad}");
        }
    }
}
