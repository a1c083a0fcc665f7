//! Running commands on a node through the system's `ssh`.
//!
//! The system client is used on purpose: it honours `~/.ssh/config`, the
//! agent and known_hosts exactly as the operator's own `ssh` does. Host keys
//! are always checked; `--accept-new-host-keys` only lets a host never seen
//! before be added (`StrictHostKeyChecking=accept-new`), and a changed key is
//! still refused. `BatchMode` keeps ssh from ever prompting.

use crate::config::{Config, DEFAULT_CONNECT_TIMEOUT_SECS, Node};
use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};

/// How to reach nodes.
#[derive(Clone, Debug)]
pub struct Ssh {
    config: Config,
    accept_new_host_keys: bool,
}

/// Why a command could not be run on a node, with what to do about it.
#[derive(Debug)]
pub struct SshError {
    /// The node.
    pub host: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.host, self.message)
    }
}

impl std::error::Error for SshError {}

/// What a remote command printed, and whether it succeeded.
#[derive(Debug)]
pub struct Remote {
    /// Its exit status (0 on success).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Remote {
    /// Whether it exited with 0.
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

impl Ssh {
    /// Reaches nodes as `config` says.
    pub fn new(config: &Config, accept_new_host_keys: bool) -> Ssh {
        Ssh {
            config: config.clone(),
            accept_new_host_keys,
        }
    }

    fn command(&self, node: &Node, remote_command: &str) -> Command {
        let timeout = self
            .config
            .connect_timeout_secs
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS);
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes"])
            .args(["-o", &format!("ConnectTimeout={timeout}")])
            .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]);
        if self.accept_new_host_keys {
            c.args(["-o", "StrictHostKeyChecking=accept-new"]);
        }
        if let Some(file) = &self.config.known_hosts {
            c.arg("-o")
                .arg(format!("UserKnownHostsFile={}", file.display()));
        }
        if let Some(key) = &self.config.sshkey {
            c.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
        }
        if let Some(user) = &self.config.username {
            c.args(["-l", user]);
        }
        if let Some(port) = node.ssh_port {
            c.args(["-p", &port.to_string()]);
        }
        c.arg("--").arg(&node.host).arg(remote_command);
        c
    }

    /// Runs `remote_command` (a POSIX shell command line) on `node`.
    pub fn run(&self, node: &Node, remote_command: &str) -> Result<Remote, SshError> {
        self.run_with_input(node, remote_command, &[])
    }

    /// Runs `remote_command` on `node` with `input` on its standard input.
    pub fn run_with_input(
        &self,
        node: &Node,
        remote_command: &str,
        input: &[u8],
    ) -> Result<Remote, SshError> {
        let mut child = self.spawn(node, remote_command)?;
        let mut stdin = child.stdin.take();
        if let Some(s) = stdin.as_mut() {
            // A remote command that exits early closes the pipe; its status
            // then says what happened.
            let _ = s.write_all(input);
        }
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| SshError {
            host: node.host.clone(),
            message: format!("ssh failed: {e}"),
        })?;
        self.finish(node, out)
    }

    /// Starts `remote_command` on `node` with a pipe to its standard input
    /// (for uploads with progress); finish it with [`Ssh::wait`].
    pub fn spawn(&self, node: &Node, remote_command: &str) -> Result<Child, SshError> {
        self.command(node, remote_command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SshError {
                host: node.host.clone(),
                message: format!("cannot run `ssh` ({e}); install the OpenSSH client"),
            })
    }

    /// Waits for a command started with [`Ssh::spawn`].
    pub fn wait(&self, node: &Node, mut child: Child) -> Result<Remote, SshError> {
        drop(child.stdin.take());
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut stdout);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        let status = child.wait().map_err(|e| SshError {
            host: node.host.clone(),
            message: format!("ssh failed: {e}"),
        })?;
        self.finish(
            node,
            Output {
                status,
                stdout: stdout.into_bytes(),
                stderr: stderr.into_bytes(),
            },
        )
    }

    fn finish(&self, node: &Node, out: Output) -> Result<Remote, SshError> {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // ssh exits with 255 for its own errors; the remote command's
        // status otherwise.
        let code = out.status.code().unwrap_or(-1);
        if code == 255 {
            return Err(SshError {
                host: node.host.clone(),
                message: explain(&stderr, &self.config),
            });
        }
        Ok(Remote {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        })
    }
}

/// Turns ssh's complaint into what is wrong and what to do.
fn explain(stderr: &str, config: &Config) -> String {
    let said = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect::<Vec<_>>()
        .join("; ");
    let has = |s: &str| stderr.contains(s);
    let advice = if has("Permission denied") {
        match &config.sshkey {
            Some(key) => format!(
                "authentication failed: the node does not accept key {} for user {} \
                 (check `openreplica addsshkey` and `openreplica addusername`)",
                key.display(),
                config.username.as_deref().unwrap_or("(your local user)")
            ),
            None => "authentication failed: add the node's key with `openreplica addsshkey FILE` \
                     and the login with `openreplica addusername USER`"
                .to_string(),
        }
    } else if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        "the node's host key is unknown or has changed: verify it and add it to known_hosts \
         (or pass --accept-new-host-keys for a host never seen before; a changed key is never accepted)"
            .to_string()
    } else if has("Connection refused") {
        "Cannot connect to node, check if it is up and running: it refuses SSH connections \
         (is sshd running, on this port?)"
            .to_string()
    } else if has("timed out") || has("No route to host") || has("Network is unreachable") {
        "Cannot connect to node, check if it is up and running: no answer \
         (is it up, and is the address and firewall right?)"
            .to_string()
    } else if has("Could not resolve hostname") || has("Name or service not known") {
        "Cannot connect to node: its name does not resolve (check the spelling)".to_string()
    } else {
        "Cannot connect to node, check if it is up and running".to_string()
    };
    if said.is_empty() {
        advice
    } else {
        format!("{advice} [ssh: {said}]")
    }
}

/// Quotes `s` for a POSIX shell (single quotes; an embedded `'` closes,
/// escapes and reopens them).
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `job` for every node, at most `parallel` at a time, and returns the
/// results in the nodes' order.
pub fn for_each_node<T: Send>(
    nodes: &[Node],
    parallel: usize,
    job: impl Fn(&Node) -> T + Sync,
) -> Vec<T> {
    let mut results = Vec::with_capacity(nodes.len());
    for chunk in nodes.chunks(parallel.max(1)) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|n| s.spawn(|| job(n))).collect();
            for h in handles {
                match h.join() {
                    Ok(r) => results.push(r),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_remote_shell() {
        for s in [
            "plain",
            "with space",
            "it's",
            "$(rm -rf /)",
            "",
            "a\"b",
            "x;y",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .expect("sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
    }

    #[test]
    fn ssh_errors_say_what_to_do() {
        let c = Config::default();
        let refused = explain(
            "ssh: connect to host 10.0.0.1 port 22: Connection refused",
            &c,
        );
        assert!(refused.contains("Cannot connect to node, check if it is up and running"));
        assert!(
            refused.contains("Connection refused"),
            "ssh's own words are kept"
        );
        assert!(explain("Permission denied (publickey).", &c).contains("addsshkey"));
        assert!(explain("Host key verification failed.", &c).contains("--accept-new-host-keys"));
    }
}
