//! Changes: promote, approve, reject and roll back, each the same gated
//! transaction as the CLI, with the token's owner as the actor.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PromoteBody {
    bundle_id: String,
    version: String,
    env: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    skip_gates: bool,
}

pub(super) fn no_check<B>(_: &crate::Principal, _: &B) -> ApiResult<()> {
    Ok(())
}

/// A change: the token's role allows it, the body is good, `check` passes,
/// and `f` runs as the token's owner in the CLI's own transaction.
pub(super) async fn change<B: DeserializeOwned + Send + 'static, T: Send + 'static>(
    s: &AppState,
    headers: &HeaderMap,
    needed: Role,
    b: Body,
    check: impl FnOnce(&crate::Principal, &B) -> ApiResult<()>,
    f: impl FnOnce(&Ctx<'_>, B) -> Result<T, CoreError> + Send + 'static,
) -> ApiResult<T> {
    let who = s
        .authorize(headers, needed)?
        .ok_or_else(ApiError::unauthorized)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "a change must be sent as JSON",
            "send `Content-Type: application/json` and a JSON object",
        ));
    }
    // Only now, with the token checked, is the body read: an anonymous
    // client cannot hold a slot by sending one slowly.
    let req: B = body(read_body(b, headers, s.body_timeout).await?)?;
    check(&who, &req)?;
    write(s, who.owner, move |ctx| f(ctx, req)).await
}

pub(super) async fn promote(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let overriding = |who: &crate::Principal, req: &PromoteBody| {
        if req.skip_gates && who.role != Role::Admin {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "overriding gates needs the role admin; the token of {} has {}",
                    who.owner, who.role
                ),
                "promote through the gates, or ask an admin",
            ));
        }
        Ok(())
    };
    let r = change(
        &s,
        &headers,
        Role::Deployer,
        b,
        overriding,
        |ctx, req: PromoteBody| {
            let out = release::promote(
                ctx,
                &PromoteRequest {
                    id: req.bundle_id,
                    version: req.version,
                    env: req.env,
                    reason: req.reason,
                    dry_run: req.dry_run,
                    skip_gates: req.skip_gates,
                },
            )?;
            let notices = releaseops_core::notify::of_promotion(&out, ctx);
            Ok((out, notices))
        },
    )
    .await
    .and_then(|(out, notices)| {
        s.notifier.send(&notices);
        // A dry run is a question: the answer is the outcome, gates and all.
        if out.blocked_by.is_empty() || out.dry_run {
            return Ok(Json(out));
        }
        let pending_only = out
            .gates
            .iter()
            .filter(|g| out.blocked_by.contains(&g.gate))
            .all(|g| g.status == releaseops_format::history::GateStatus::Pending);
        let hint = if pending_only {
            "pending gates can pass later: approve, wait, or run the evaluation, then promote again"
        } else {
            "a failed gate does not pass by waiting: each gate's reason is in the outcome"
        };
        Err(ApiError {
            kind: ErrorKind::Blocked,
            message: format!(
                "{} {} -> {} is blocked by {}",
                out.id,
                out.version,
                out.env,
                releaseops_format::history::Gate::join(&out.blocked_by, ", ")
            ),
            hint: Some(hint.into()),
            detail: Some(Box::new((
                "outcome",
                serde_json::to_value(&out).unwrap_or_default(),
            ))),
        })
    });
    respond(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApproveBody {
    bundle_id: String,
    version: String,
    env: String,
    #[serde(default)]
    comment: Option<String>,
}

pub(super) async fn approve(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let r = change(
        &s,
        &headers,
        Role::Approver,
        b,
        no_check,
        |ctx, req: ApproveBody| {
            release::approve(
                ctx,
                &req.bundle_id,
                &req.version,
                &req.env,
                req.comment,
                None,
            )
        },
    )
    .await;
    respond(r.map(Json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RejectBody {
    bundle_id: String,
    version: String,
    #[serde(default)]
    env: Option<String>,
    reason: String,
}

pub(super) async fn reject(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let r = change(
        &s,
        &headers,
        Role::Approver,
        b,
        no_check,
        |ctx, req: RejectBody| {
            release::reject(
                ctx,
                &req.bundle_id,
                &req.version,
                req.env.as_deref(),
                &req.reason,
            )
        },
    )
    .await;
    respond(r.map(Json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackBody {
    bundle_id: String,
    env: String,
    #[serde(default)]
    steps: Option<u32>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

pub(super) async fn rollback(State(s): St, headers: HeaderMap, b: Body) -> Response {
    let r = change(
        &s,
        &headers,
        Role::Deployer,
        b,
        no_check,
        |ctx, req: RollbackBody| {
            let out = release::rollback(
                ctx,
                &RollbackRequest {
                    env: req.env,
                    id: req.bundle_id,
                    steps: req.steps,
                    to: req.to,
                    reason: req.reason,
                },
            )?;
            let notices = releaseops_core::notify::of_rollback(&out, ctx);
            Ok((out, notices))
        },
    )
    .await;
    respond(r.map(|(out, notices)| {
        s.notifier.send(&notices);
        Json(out)
    }))
}

/// `POST /v1/sync`: the server fetches the team's remote now and applies
/// what others pushed (a forge's push webhook calls it). It takes nothing
/// from the request: the state comes from the configured remote, checked
/// as every sync checks it, so no token is needed; calls closer together
/// than a second share one fetch, and do no git work at all. Without a
/// token it answers only whether it fetched and how the store stands (not
/// which bundles are unpushed: reads may need a token).
pub(super) async fn sync(State(s): St) -> Response {
    let r = async {
        let fetch = s.sync_due();
        if !fetch {
            return Ok(json!({ "fetched": false }));
        }
        let status = with_store(&s, move |store| {
            store.pull_latest()?;
            store.sync_status(false)?.ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotFound,
                    "sync is not set up on this server's store",
                    "turn it on with `releaseops sync --enable REMOTE` in the repository the server serves",
                )
            })
        })
        .await?;
        s.wake_watcher();
        Ok(json!({ "fetched": true, "sync": {"standing": status.standing} }))
    }
    .await;
    respond(r.map(Json))
}
