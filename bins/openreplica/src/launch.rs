//! `openreplica replica` and `openreplica nameserver`: start detached
//! `concoord` processes on configured nodes.
//!
//! The first replica founds the instance; every later one joins it through
//! `-b` with the addresses of those already started, and gets a copy of the
//! instance secret (over SSH, from the founder's node) so it can prove it is
//! a replica of this instance. Each start waits until the new replica
//! answers `concoord status` on its node, or reports its last log lines.

use crate::config::{Config, Node};
use crate::ssh::{Ssh, quote};
use crate::state::{Kind, Launched, SecretFile, State};
use anyhow::{Context, Result, bail};

/// The port a replica gets when `-p` is not given, and the first tried.
const FIRST_PORT: u16 = 14000;
/// The instance secret's file, relative to the remote directory.
const SECRET_FILE: &str = "instance.secret";

/// The value of option `-s VALUE`, `--long VALUE` or `--long=VALUE`.
pub fn flag_value(args: &[String], short: &str, long: &str) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == short || a == long {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            return Some(v.to_string());
        }
    }
    None
}

fn has_flag(args: &[String], names: &[&str]) -> bool {
    args.iter().any(|a| {
        names
            .iter()
            .any(|n| a == n || a.starts_with(&format!("{n}=")))
    })
}

/// The node for the next process: `--node`, else the one after the node of
/// the last process started (round-robin over the configured order).
pub fn pick_node<'a>(config: &'a Config, state: &State, wanted: Option<&str>) -> Result<&'a Node> {
    if let Some(host) = wanted {
        return config.require_node(host);
    }
    if config.nodes.is_empty() {
        bail!("no node is configured: add one with `openreplica addnode HOST`");
    }
    let next = state
        .launched
        .last()
        .and_then(|l| config.nodes.iter().position(|n| n.host == l.host))
        .map_or(0, |i| (i + 1) % config.nodes.len());
    Ok(&config.nodes[next])
}

/// A port on `addr` no recorded process uses, from 14000 up.
fn free_port(state: &State, addr: &str) -> u16 {
    let mut port = FIRST_PORT;
    while state
        .launched
        .iter()
        .any(|l| l.addr == format!("{addr}:{port}"))
    {
        port = port.saturating_add(1);
    }
    port
}

/// What to start, worked out from the user's arguments and the record.
struct Plan {
    kind: Kind,
    args: Vec<String>,
    addr: String,
    log: String,
    /// The instance secret to copy onto the node first, if joining.
    secret_from: Option<SecretFile>,
    /// This replica founds the instance and creates its secret.
    founds: bool,
}

fn plan(kind: Kind, node: &Node, user_args: &[String], state: &State, remote_dir: &str) -> Plan {
    let mut args = user_args.to_vec();
    let boot = state.bootstrap();
    if !has_flag(&args, &["-b", "--boot"]) && !boot.is_empty() {
        args.extend(["-b".into(), boot]);
    }
    let addr = match kind {
        Kind::Replica => {
            let host = flag_value(&args, "-a", "--addr").unwrap_or_else(|| {
                args.extend(["-a".into(), node.host.clone()]);
                node.host.clone()
            });
            let port = flag_value(&args, "-p", "--port")
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or_else(|| {
                    let p = free_port(state, &host);
                    args.extend(["-p".into(), p.to_string()]);
                    p
                });
            format!("{host}:{port}")
        }
        Kind::Nameserver => {
            // `concoord nameserver` answers on 127.0.0.1 unless told: on a
            // remote node, answer on the node's address.
            let host = flag_value(&args, "-a", "--dns-addr").unwrap_or_else(|| {
                args.extend(["--dns-addr".into(), node.host.clone()]);
                node.host.clone()
            });
            let port = flag_value(&args, "--dns-port", "--dns-port").unwrap_or("53".into());
            format!("{host}:{port}")
        }
    };
    let joins = has_flag(&args, &["-b", "--boot"]);
    let own_secret = has_flag(&args, &["--peer-secret", "--no-peer-secret"]);
    let mut secret_from = None;
    let mut founds = false;
    if kind == Kind::Replica && !own_secret {
        if !joins {
            founds = true;
            args.extend(["--peer-secret".into(), SECRET_FILE.into()]);
        } else if let Some(secret) = &state.peer_secret {
            // Joining the instance openreplica founded. (Joining another
            // one needs its secret given with --peer-secret; the replica
            // says so.)
            secret_from = Some(secret.clone());
            args.extend(["--peer-secret".into(), SECRET_FILE.into()]);
        }
    }
    let log = format!(
        "{remote_dir}/logs/{}-{}.log",
        kind.subcommand(),
        addr.replace([':', '/'], "_")
    );
    Plan {
        kind,
        args,
        addr,
        log,
        secret_from,
        founds,
    }
}

/// Copies the instance secret from the founder's node to `node`, readable
/// only by the login there.
fn copy_secret(
    ssh: &Ssh,
    config: &Config,
    from: &SecretFile,
    node: &Node,
    remote_dir: &str,
) -> Result<()> {
    let source = config.require_node(&from.host)?;
    let out = ssh.run(source, &format!("cat {}", quote(&from.path)))?;
    if !out.ok() || out.stdout.is_empty() {
        bail!(
            "cannot read the instance secret {} on {}: {}",
            from.path,
            from.host,
            out.stderr.trim()
        );
    }
    let target = format!("{remote_dir}/{SECRET_FILE}");
    let out = ssh.run_with_input(
        node,
        &format!(
            "umask 077 && mkdir -p {dir} && cat > {t}.tmp && mv -f {t}.tmp {t}",
            dir = quote(remote_dir),
            t = quote(&target)
        ),
        out.stdout.as_bytes(),
    )?;
    if !out.ok() {
        bail!(
            "cannot store the instance secret on {}: {}",
            node.host,
            out.stderr.trim()
        );
    }
    Ok(())
}

/// The remote script: start detached, print the pid, then wait until the
/// process answers (a replica) or is still up after a second (a name
/// server); on failure print the log's tail to standard error.
fn start_script(plan: &Plan, remote_dir: &str) -> String {
    let args: Vec<String> = plan.args.iter().map(|a| quote(a)).collect();
    let log = plan
        .log
        .strip_prefix(&format!("{remote_dir}/"))
        .unwrap_or(&plan.log);
    let ready = match plan.kind {
        Kind::Replica => format!(
            "bin/concoord status -b {} --timeout 0.5 >/dev/null 2>&1",
            quote(&plan.addr)
        ),
        Kind::Nameserver => "[ $i -ge 10 ]".to_string(),
    };
    format!(
        "cd {dir} 2>/dev/null && [ -x bin/concoord ] || {{ echo 'concoord is not installed here' >&2; exit 3; }}; \
         mkdir -p logs; \
         setsid nohup bin/concoord {sub} {args} > {log} 2>&1 < /dev/null & pid=$!; echo \"$pid\"; \
         i=0; while [ $i -lt 300 ]; do \
           if ! kill -0 \"$pid\" 2>/dev/null; then tail -n 20 {log} >&2; exit 4; fi; \
           if {ready}; then exit 0; fi; sleep 0.1; i=$((i+1)); done; \
         tail -n 20 {log} >&2; exit 5",
        dir = quote(remote_dir),
        sub = plan.kind.subcommand(),
        args = args.join(" "),
        log = quote(log),
    )
}

/// Starts one process of `kind` on `node` and records it.
pub fn start(
    ssh: &Ssh,
    config: &Config,
    state: &mut State,
    node: &Node,
    kind: Kind,
    user_args: &[String],
) -> Result<Launched> {
    let remote_dir = config.remote_dir();
    let plan = plan(kind, node, user_args, state, remote_dir);
    if let Some(from) = &plan.secret_from
        && from.host != node.host
    {
        copy_secret(ssh, config, from, node, remote_dir)?;
    }
    let out = ssh.run(node, &start_script(&plan, remote_dir))?;
    let pid: Option<u32> = out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok());
    let what = format!("{} {} on {}", kind.subcommand(), plan.addr, node.host);
    match out.code {
        0 => {}
        3 => bail!(
            "{what}: concoord is not installed on the node; run `openreplica setup {}`",
            node.host
        ),
        4 => bail!(
            "{what} exited at start; its log ends:\n{}",
            out.stderr.trim_end()
        ),
        5 => bail!(
            "{what} (pid {}) did not answer within 30 s; its log ends:\n{}",
            pid.map_or("?".into(), |p| p.to_string()),
            out.stderr.trim_end()
        ),
        code => bail!(
            "{what}: starting it failed (exit {code}): {}",
            out.stderr.trim()
        ),
    }
    let pid = pid.with_context(|| format!("{what}: no process id came back"))?;
    let launched = Launched {
        kind,
        host: node.host.clone(),
        pid,
        addr: plan.addr.clone(),
        log: plan.log.clone(),
        args: plan.args.clone(),
    };
    if plan.founds {
        state.peer_secret = Some(SecretFile {
            host: node.host.clone(),
            path: format!("{remote_dir}/{SECRET_FILE}"),
        });
    }
    state.launched.push(launched.clone());
    Ok(launched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn node(host: &str) -> Node {
        Node {
            host: host.into(),
            ssh_port: None,
        }
    }

    #[test]
    fn the_first_replica_founds_and_the_next_join_it_with_the_secret() {
        let mut state = State::default();
        let first = plan(
            Kind::Replica,
            &node("n1"),
            &strings(&["-o", "counter"]),
            &state,
            ".concoord",
        );
        assert!(first.founds);
        assert_eq!(first.addr, "n1:14000");
        assert!(!has_flag(&first.args, &["-b"]), "{:?}", first.args);
        assert_eq!(
            flag_value(&first.args, "--peer-secret", "--peer-secret").as_deref(),
            Some(SECRET_FILE)
        );
        state.launched.push(Launched {
            kind: Kind::Replica,
            host: "n1".into(),
            pid: 1,
            addr: first.addr.clone(),
            log: first.log.clone(),
            args: first.args.clone(),
        });
        state.peer_secret = Some(SecretFile {
            host: "n1".into(),
            path: ".concoord/instance.secret".into(),
        });
        let second = plan(
            Kind::Replica,
            &node("n1"),
            &strings(&["-o", "counter"]),
            &state,
            ".concoord",
        );
        assert!(!second.founds);
        assert_eq!(
            second.addr, "n1:14001",
            "a second replica on a node gets the next port"
        );
        assert_eq!(
            flag_value(&second.args, "-b", "--boot").as_deref(),
            Some("n1:14000")
        );
        assert!(second.secret_from.is_some());
    }

    #[test]
    fn the_users_own_flags_win() {
        let state = State::default();
        let p = plan(
            Kind::Replica,
            &node("n1"),
            &strings(&["--addr=10.0.0.5", "-p", "15000", "--no-peer-secret"]),
            &state,
            ".concoord",
        );
        assert_eq!(p.addr, "10.0.0.5:15000");
        assert!(!p.founds && p.secret_from.is_none());
        assert!(!has_flag(&p.args, &["--peer-secret"]));
    }

    #[test]
    fn nodes_are_taken_round_robin_unless_named() {
        let config = Config {
            nodes: vec![node("a"), node("b")],
            ..Config::default()
        };
        let mut state = State::default();
        assert_eq!(pick_node(&config, &state, None).expect("node").host, "a");
        state.launched.push(Launched {
            kind: Kind::Replica,
            host: "a".into(),
            pid: 1,
            addr: "a:14000".into(),
            log: String::new(),
            args: Vec::new(),
        });
        assert_eq!(pick_node(&config, &state, None).expect("node").host, "b");
        assert_eq!(
            pick_node(&config, &state, Some("a")).expect("node").host,
            "a"
        );
        assert!(pick_node(&config, &state, Some("c")).is_err());
    }
}
