//! Targets: what produces the output being judged. The `command` target runs
//! the team's real agent as a subprocess per case: the resolved bundle and the
//! case go in on stdin as JSON, the answer comes back on stdout as text, or as
//! JSON with `output` and optional `tool_calls`, `usage`, `latency_ms`. A case
//! that overruns its timeout has its process killed, so the timeout bounds
//! wall time for real.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::providers::{self, Chat, Provider, RetryPolicy, call_http};
use releaseops_format::template::render;

pub use crate::output::{AgentOutput, MAX_OUTPUT_BYTES, ToolCall, Usage, parse_answer};

/// The agent as a subprocess.
#[derive(Debug, Clone)]
pub struct CommandTarget {
    pub argv: Vec<String>,
    /// The variables the suite gives the agent (besides [`BASE_ENV`]); it
    /// inherits nothing else.
    pub env: IndexMap<String, String>,
    pub cwd: PathBuf,
    /// Bytes kept of each of stdout and stderr.
    pub max_output_bytes: usize,
}

/// What an agent inherits from releaseops' environment: enough to find its
/// interpreter and write temporary files, never a token or a key.
pub const BASE_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
];

/// The team's agent service.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    pub client: reqwest::Client,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// The bundle's own model, with the bundle's own prompts.
#[derive(Clone)]
pub struct ModelTarget {
    pub client: reqwest::Client,
    pub provider: Provider,
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: u64,
    pub parameters: serde_json::Map<String, Value>,
    /// Templates of every prompt role but `user`, in manifest order.
    pub system_templates: Vec<String>,
    /// The `user` role's template, if the bundle has one.
    pub user_template: Option<String>,
    /// The tools the model is offered.
    pub tools: Vec<providers::ToolDef>,
    /// Where responses are cached (None: no cache).
    pub cache: Option<providers::ResponseCache>,
    /// The provider's shared rate limit, if the suite sets one.
    pub limiter: Option<std::sync::Arc<providers::RateLimiter>>,
}

impl std::fmt::Debug for ModelTarget {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTarget")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish()
    }
}

impl ModelTarget {
    /// The chat for one case: system from the bundle's prompts, user from its
    /// `user` prompt, else the case's `message`/`input`/`query`, else the input as JSON.
    pub fn chat_for(&self, input: &serde_json::Map<String, Value>) -> Result<Chat, String> {
        let system = self
            .system_templates
            .iter()
            .map(|t| render(t, input))
            .collect::<Result<Vec<_>, _>>()?
            .join("\n\n");
        let user = match &self.user_template {
            Some(t) => render(t, input)?,
            None => ["message", "input", "query"]
                .iter()
                .find_map(|k| input.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .unwrap_or_else(|| Value::Object(input.clone()).to_string()),
        };
        Ok(Chat {
            model: self.model.clone(),
            system,
            user,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            parameters: self.parameters.clone(),
            tools: self.tools.clone(),
        })
    }
}

/// What produces the output for a case.
#[derive(Debug, Clone)]
pub enum Target {
    Command(CommandTarget),
    Http(HttpTarget),
    Model(Box<ModelTarget>),
}

impl Target {
    /// One call for one case: `payload` is what the command and http targets
    /// receive; `input` is the case's variables (suite `vars` included).
    pub async fn call(
        &self,
        payload: &Value,
        input: &serde_json::Map<String, Value>,
        retry: RetryPolicy,
    ) -> Result<AgentOutput, String> {
        match self {
            Target::Command(c) => {
                c.call(&serde_json::to_vec(payload).unwrap_or_default())
                    .await
            }
            Target::Http(h) => call_http(&h.client, &h.url, &h.headers, payload, retry).await,
            Target::Model(m) => {
                let chat = m.chat_for(input)?;
                // Each repeat is its own sample, cached on its own.
                let cache = m.cache.clone().map(|mut c| {
                    c.salt = format!(
                        "repeat={}",
                        payload.get("repeat").and_then(|r| r.as_u64()).unwrap_or(0)
                    );
                    c
                });
                providers::chat_cached(
                    &m.client,
                    m.provider,
                    &m.base_url,
                    m.api_key.as_deref(),
                    &chat,
                    retry,
                    cache.as_ref(),
                    m.limiter.as_deref(),
                )
                .await
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Command(c) => format!("command: {}", c.argv.join(" ")),
            Target::Http(h) => format!("http: {}", h.url),
            Target::Model(m) => format!("model: {} {}", m.provider.name(), m.model),
        }
    }
}

/// Kills the agent's whole process group when dropped: on a timeout (the
/// runner drops the call), on a stream over its cap, and after a normal exit
/// (so a child it left behind, or one that ignores SIGTERM, does not live on).
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Blocks until the child `pid` has exited, leaving it to be reaped.
#[cfg(unix)]
fn exited_unreaped(pid: rustix::process::Pid) {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    while let Err(rustix::io::Errno::INTR) = waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    ) {}
}

/// Reads a stream to its end, keeping at most `cap` bytes; `true` when it
/// had more (the rest is not read: the agent is stopped).
async fn read_capped(
    mut r: impl tokio::io::AsyncRead + Unpin,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((out, false));
        }
        if out.len() + n > cap {
            out.extend_from_slice(&buf[..cap - out.len()]);
            return Ok((out, true));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

async fn read_opt(
    s: Option<impl tokio::io::AsyncRead + Unpin>,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    match s {
        Some(s) => read_capped(s, cap).await,
        None => Ok((Vec::new(), false)),
    }
}

impl CommandTarget {
    /// Runs the agent once with `payload` on stdin.
    pub async fn call(&self, payload: &[u8]) -> Result<AgentOutput, String> {
        let start = Instant::now();
        let mut cmd = tokio::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .current_dir(&self.cwd)
            .env_clear()
            .envs(
                BASE_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
            )
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so everything it starts can be stopped.
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "cannot run `{}`: not found (the suite's target.command)",
                    self.argv[0]
                )
            } else {
                format!("cannot run `{}`: {e}", self.argv[0])
            }
        })?;
        let _group = ProcessGroup(child.id());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let payload = payload.to_vec();
        let cap = self.max_output_bytes;
        let write = async move {
            if let Some(mut si) = stdin {
                // An agent that exits without reading stdin is not an error.
                let _ = si.write_all(&payload).await;
                drop(si);
            }
        };
        // The runner's timeout drops this future, and with it the group.
        let ((), out, err) = tokio::join!(write, read_opt(stdout, cap), read_opt(stderr, cap));
        let (out, out_over) = out.map_err(|e| format!("the agent failed: {e}"))?;
        let (err, err_over) = err.map_err(|e| format!("the agent failed: {e}"))?;
        if out_over || err_over {
            return Err(format!(
                "the agent wrote more than {cap} bytes on {} (target.max_output_bytes); it was stopped",
                if out_over { "stdout" } else { "stderr" }
            ));
        }
        // Its streams are closed. Wait, without reaping it, until the
        // leader has exited (the runner's timeout still bounds this), so
        // that its own exit status is what we report; then stop whatever it
        // left running (the leader is not reaped yet, so its group id cannot
        // belong to anyone else) and reap it.
        #[cfg(unix)]
        if let Some(pid) = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = tokio::task::spawn_blocking(move || exited_unreaped(pid)).await;
        }
        drop(_group);
        let status = child
            .wait()
            .await
            .map_err(|e| format!("the agent failed: {e}"))?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if !status.success() {
            let stderr = String::from_utf8_lossy(&err);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "the agent exited with {}{}",
                status
                    .code()
                    .map(|c| format!("code {c}"))
                    .unwrap_or_else(|| "a signal".into()),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", tail.join(" / "))
                }
            ));
        }
        parse_answer(&out, ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_text_or_json() {
        assert_eq!(parse_answer(b"Hello\n", 1.0).unwrap().output, "Hello");
        let j = parse_answer(br#"{"output": "ok", "tool_calls": [{"name": "t", "args": {"a": 1}}], "latency_ms": 7}"#, 1.0).unwrap();
        assert_eq!(
            (
                j.output.as_str(),
                j.tool_calls[0].name.as_str(),
                j.latency_ms
            ),
            ("ok", "t", 7.0)
        );
        // JSON without `output` is just text.
        assert_eq!(
            parse_answer(b"{\"a\": 1}", 1.0).unwrap().output,
            "{\"a\": 1}"
        );
        assert!(parse_answer(&[0xff], 1.0).is_err());
    }
}
