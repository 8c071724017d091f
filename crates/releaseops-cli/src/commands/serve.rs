//! `releaseops serve` and `releaseops token new`.

use std::path::Path;
use std::time::Duration;

use releaseops_server::{Options, Role, Tokens};

use crate::app::{App, CmdResult, Failure};
use crate::cli::ServeArgs;
use crate::output::{self, BOLD, DIM, paint};

fn config_failure(message: String) -> Failure {
    Failure {
        kind: releaseops_core::ErrorKind::Invalid,
        message,
        hint: Some(
            "tokens files list `- {owner, role, sha256}` under `tokens:`; RELEASEOPS_API_TOKENS holds ROLE:OWNER:TOKEN entries separated by commas".into(),
        ),
    }
}

pub(super) fn serve(app: &App, a: ServeArgs) -> CmdResult {
    let store = app.store()?;
    let mut tokens = Tokens::default();
    // A token source that yields no token is a mistake, not "no auth":
    // fail closed rather than open the reads.
    let none_in = |what: String| config_failure(format!("{what} holds no token"));
    if let Some(f) = &a.tokens {
        let t = Tokens::from_file(f).map_err(config_failure)?;
        if t.is_empty() {
            return Err(none_in(format!("the tokens file {}", f.display())));
        }
        tokens.merge(t).map_err(config_failure)?;
    }
    if let Ok(v) = std::env::var("RELEASEOPS_API_TOKENS") {
        let t = Tokens::from_env_value(&v).map_err(config_failure)?;
        if t.is_empty() {
            return Err(none_in("RELEASEOPS_API_TOKENS".into()));
        }
        tokens.merge(t).map_err(config_failure)?;
    }
    let mut opts = Options::new(store.root().to_path_buf());
    opts.tokens = tokens;
    opts.public_reads = a.public_reads;
    opts.max_connections = a.max_connections.max(1);
    opts.header_timeout = Duration::from_secs(a.header_timeout.max(1));
    opts.allowed_hosts = a.allow_host.clone();
    opts.git_commit = !app.global.no_commit;
    opts.clock = app.simulated_clock.then_some(app.now);
    releaseops_core::facts::check_trace_store(&store)?;
    let traces = super::traces::settings(&store);
    let traces_at = traces.describe();
    opts.traces = Some(traces);
    releaseops_server::check_bind(&a.addr, &opts).map_err(|m| {
        Failure::usage(
            m,
            "configure tokens (--tokens FILE or RELEASEOPS_API_TOKENS), listen on 127.0.0.1, or pass --public-reads to serve reads to anyone on purpose",
        )
    })?;
    let store_dir = store.dir().to_path_buf();
    drop(store);
    let io = |what: String| {
        move |e: std::io::Error| Failure {
            kind: releaseops_core::ErrorKind::Io,
            message: format!("{what}: {e}"),
            hint: Some("pick another --addr, or stop what is using it".into()),
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the server's runtime".into()))?;
    let n_tokens = opts.tokens.len();
    let public_reads = opts.public_reads;
    let json = app.global.json;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.addr)
            .await
            .map_err(io(format!("cannot listen on {}", a.addr)))?;
        let local = listener
            .local_addr()
            .map_err(io("cannot read the listening address".into()))?;
        let (reads, writes) = if n_tokens == 0 {
            ("open".to_string(), "off (no tokens configured)".to_string())
        } else {
            (
                if public_reads {
                    "open".to_string()
                } else {
                    "need a token".to_string()
                },
                format!("on, {n_tokens} token(s)"),
            )
        };
        if json {
            // One line, at once: a script reads it to learn the port.
            anstream::println!(
                "{}",
                serde_json::json!({
                    "url": format!("http://{local}"),
                    "address": local.to_string(),
                    "port": local.port(),
                    "store": store_dir,
                    "reads_open": n_tokens == 0 || public_reads,
                    "writes_enabled": n_tokens > 0,
                    "tokens": n_tokens,
                    "openapi": format!("http://{local}/openapi.json"),
                    "dashboard": format!("http://{local}/"),
                    "traces": {"otlp": format!("http://{local}/v1/traces"), "store": traces_at},
                })
            );
        } else {
            anstream::println!(
                "releaseops API on {} (store {})",
                paint(BOLD, &format!("http://{local}")),
                store_dir.display()
            );
            anstream::println!(
                "  dashboard: {}{}",
                paint(BOLD, &format!("http://{local}/")),
                if n_tokens > 0 { " (sign in with a token)" } else { "" }
            );
            anstream::println!(
                "  {}",
                paint(
                    DIM,
                    &format!(
                        "reads {reads}; writes {writes}; OpenAPI at http://{local}/openapi.json"
                    )
                )
            );
            anstream::println!(
                "  {}",
                paint(
                    DIM,
                    &format!(
                        "traces: OTLP/HTTP at http://{local}/v1/traces (an ingest token), kept in {traces_at}"
                    )
                )
            );
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let stopped = releaseops_server::serve(listener, opts, shutdown_signal())
            .await
            .map_err(|e| Failure {
                kind: releaseops_core::ErrorKind::Server,
                message: e.to_string(),
                hint: None,
            })?;
        anstream::eprintln!(
            "stopped{}",
            if stopped.finished_in_flight > 0 {
                format!(
                    "; {} change(s) in flight were finished first",
                    stopped.finished_in_flight
                )
            } else {
                String::new()
            }
        );
        Ok(0)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(super) fn token_new(app: &App, owner: &str, role: &str, file: &Path) -> CmdResult {
    let role = Role::parse(role).ok_or_else(|| {
        Failure::usage(
            format!("unknown role '{role}'"),
            "use viewer, deployer, approver or admin",
        )
    })?;
    let token = releaseops_server::auth::new_token().map_err(|m| Failure {
        kind: releaseops_core::ErrorKind::Io,
        message: m,
        hint: None,
    })?;
    releaseops_server::auth::append_token(file, owner, role, &token).map_err(config_failure)?;
    if output::json(
        app,
        &serde_json::json!({"token": token, "owner": owner.trim(), "role": role.as_str(), "file": file}),
    ) {
        return Ok(0);
    }
    anstream::println!("{token}");
    anstream::eprintln!(
        "{}",
        paint(
            DIM,
            &format!(
                "token for {} ({role}) added to {} as its SHA-256; it is shown only now",
                owner.trim(),
                file.display()
            )
        )
    );
    Ok(0)
}
