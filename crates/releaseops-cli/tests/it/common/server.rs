//! `releaseops serve` as a real process on a loopback port, and an HTTP
//! client for it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::Repo;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn start(r: &Repo, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(
            r.command(&[&["serve", "--addr", "127.0.0.1:0"], args].concat()),
            env,
        )
    }

    /// Starts `cmd` (a `serve` command line) and reads the address it prints.
    pub(crate) fn spawn(mut cmd: std::process::Command, env: &[(&str, &str)]) -> Server {
        cmd.env_remove("RELEASEOPS_API_TOKENS")
            .env_remove("RELEASEOPS_API_TOKENS_FILE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("serve prints its address");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        Server { child, url }
    }

    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// SIGTERM, then the exit status and what it printed on stderr.
    pub(crate) fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(ok.success());
        let status = self.child.wait().expect("serve exits");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).ok();
        }
        (status, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn client() -> reqwest::Client {
    // Plain HTTP on loopback; the client still wants a TLS provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}
