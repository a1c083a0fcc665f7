//! `concoord status`: each replica's view of the instance, and a warning
//! (exit code 4) when the replicas asked belong to different instances.

use clap::Args;
use concoord_client::ClientError;
use concoord_client::discovery::resolve_bootstrap;
use concoord_transport::admin::admin_request_tls;
use concoord_transport::cli::TlsArgs;
use concoord_transport::tls_config::ClientTls;
use concoord_transport::wire::{AdminReply, AdminRequest, StatusReport};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct StatusArgs {
    /// Replicas to ask (host:port, comma-separated), or the instance's
    /// domain (every replica its name server lists).
    #[arg(short = 'b', long = "boot", value_name = "BOOTSTRAP")]
    boot: String,
    /// The DNS server to resolve a -b domain with (default: the system's).
    #[arg(long, value_name = "ADDR:PORT")]
    dns_server: Option<std::net::SocketAddr>,
    /// One JSON object per replica, one per line.
    #[arg(long)]
    json: bool,
    /// The instance's security token.
    #[arg(short = 't', long = "token")]
    token: Option<String>,
    /// Seconds to wait for each replica.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Also ask each replica for a digest of its state (replicas at the same
    /// executed slot must agree). Each replica serializes its whole object to
    /// compute it, and stops serving meanwhile: about 0.4 s for a million keys.
    #[arg(long)]
    digest: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

/// Asks one replica for its status (without the state digest).
pub async fn fetch(
    addr: &str,
    token: Option<String>,
    tls: Option<&ClientTls>,
    limit: Duration,
) -> Result<StatusReport, String> {
    ask(addr, token, tls, limit, AdminRequest::Status).await
}

/// Sends `request`, a status request, to one replica.
async fn ask(
    addr: &str,
    token: Option<String>,
    tls: Option<&ClientTls>,
    limit: Duration,
    request: AdminRequest,
) -> Result<StatusReport, String> {
    match admin_request_tls(addr, None, token, tls, request, limit)
        .await
        .map_err(|e| e.to_string())?
    {
        AdminReply::Status(report) => Ok(*report),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

fn to_json(r: &StatusReport) -> serde_json::Value {
    serde_json::json!({
        "addr": r.addr,
        "node": r.node.to_string(),
        "instance": r.instance.map(|i| i.to_string()),
        "object": r.object,
        "role": r.role,
        "leader": r.leader.as_ref().map(|l| l.addr.clone()),
        "ballot": { "round": r.ballot.round, "leader": r.ballot.leader.to_string() },
        "decided": r.decided,
        "executed": r.executed,
        "known_commit": r.known_commit,
        "snapshot_slot": r.snapshot_slot,
        "log_entries": r.log_entries,
        "view_epoch": r.view_epoch,
        "members": r.members.iter().map(|m| m.addr.clone()).collect::<Vec<_>>(),
        "clients_connected": r.clients_connected,
        "state_digest": r.state_digest.map(|d| format!("{d:016x}")),
        "durable": r.durable,
        "disk_bytes": r.disk_bytes,
        "fsyncs": r.fsyncs,
        "last_fsync_us": r.last_fsync_us,
        "commands_executed": r.commands_executed,
        "client_sessions": r.client_sessions,
        "uptime_secs": r.uptime_secs,
        "peers_authenticated": r.peers_authenticated,
        "links_encrypted": r.links_encrypted,
        "connections_refused": r.connections_refused,
        "peer_messages_dropped": r.peer_messages_dropped,
        "peer_frame_bytes_max": r.peer_frame_bytes_max,
        "budget_bytes_in_use": r.budget_bytes_in_use,
        "calls_refused_busy": r.calls_refused_busy,
        "connections_over_limit": r.connections_over_limit,
        "connections_closed_full": r.connections_closed_full,
        "dns": r.dns.as_ref().map(|d| serde_json::json!({ "domain": d.domain, "addr": d.addr })),
    })
}

pub fn run(args: StatusArgs) -> ExitCode {
    let limit = Duration::from_secs_f64(args.timeout.max(0.1));
    let tls = match args.tls.client() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let resolved =
        concoord_transport::cli::block_on(resolve_bootstrap(&args.boot, args.dns_server));
    let addrs = match resolved {
        Ok((addrs, _)) => addrs,
        Err(e @ ClientError::Bootstrap(_)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let request = if args.digest {
        AdminRequest::StatusWithDigest
    } else {
        AdminRequest::Status
    };
    let results = concoord_transport::cli::block_on(async {
        let mut out = Vec::new();
        for addr in &addrs {
            out.push((
                addr.clone(),
                ask(
                    addr,
                    args.token.clone(),
                    tls.as_ref(),
                    limit,
                    request.clone(),
                )
                .await,
            ));
        }
        out
    });
    let mut reachable = 0;
    let mut instances: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !args.json {
        println!(
            "{:<22} {:<17} {:<10} {:<22} {:>8} {:>9} {:>9} {:>9} {:>10} {:>8}  VIEW",
            "REPLICA",
            "NODE",
            "ROLE",
            "LEADER",
            "BALLOT",
            "DECIDED",
            "COMMIT",
            "SNAPSHOT",
            "DISK",
            "FSYNC"
        );
    }
    for (addr, result) in results {
        match result {
            Ok(r) => {
                reachable += 1;
                let instance = r
                    .instance
                    .map_or("(not learned yet)".to_string(), |i| i.to_string());
                instances.entry(instance).or_default().push(r.addr.clone());
                if args.json {
                    println!("{}", to_json(&r));
                } else {
                    let leader = r
                        .leader
                        .as_ref()
                        .map_or("-".to_string(), |l| l.addr.clone());
                    let members: Vec<String> = r.members.iter().map(|m| m.addr.clone()).collect();
                    println!(
                        "{:<22} {:<17} {:<10} {:<22} {:>8} {:>9} {:>9} {:>9} {:>10} {:>8}  epoch {}: {}",
                        r.addr,
                        r.node.to_string(),
                        r.role,
                        leader,
                        r.ballot.round,
                        r.decided,
                        r.known_commit,
                        r.snapshot_slot,
                        if r.durable {
                            format!("{}K", r.disk_bytes / 1024)
                        } else {
                            "memory".into()
                        },
                        if r.durable {
                            format!("{}us", r.last_fsync_us)
                        } else {
                            "-".into()
                        },
                        r.view_epoch,
                        members.join(", ")
                    );
                    if let Some(digest) = r.state_digest {
                        println!(
                            "{:<22} state digest {digest:016x} after slot {}",
                            "", r.executed
                        );
                    }
                    if let Some(dns) = &r.dns {
                        println!("{:<22} answers DNS for {} on {}", "", dns.domain, dns.addr);
                    }
                    if r.links_encrypted {
                        println!("{:<22} links are encrypted (TLS, mutual on peer links)", "");
                    } else {
                        println!(
                            "{:<22} ! links are NOT encrypted (plain TCP; start replicas with --tls-ca)",
                            ""
                        );
                    }
                    if !r.peers_authenticated {
                        println!(
                            "{:<22} ! peers are NOT authenticated (--no-peer-secret)",
                            ""
                        );
                    }
                    if r.connections_refused > 0 || r.peer_messages_dropped > 0 {
                        println!(
                            "{:<22} refused {} connection(s) at the handshake, dropped {} peer message(s)",
                            "", r.connections_refused, r.peer_messages_dropped
                        );
                    }
                    let overloaded = r.calls_refused_busy > 0
                        || r.connections_over_limit > 0
                        || r.connections_closed_full > 0;
                    if overloaded {
                        println!(
                            "{:<22} overload: {} call(s) answered busy, {} connection(s) over the limit, \
                             {} closed for a full reply queue",
                            "",
                            r.calls_refused_busy,
                            r.connections_over_limit,
                            r.connections_closed_full
                        );
                    }
                }
            }
            Err(e) => {
                if args.json {
                    println!("{}", serde_json::json!({ "addr": addr, "error": e }));
                } else {
                    println!("{addr:<22} unreachable: {e}");
                }
            }
        }
    }
    if reachable == 0 {
        eprintln!("error: no replica answered");
        return ExitCode::from(3);
    }
    let known: Vec<_> = instances
        .iter()
        .filter(|(id, _)| !id.starts_with('('))
        .collect();
    if known.len() > 1 {
        let groups: Vec<String> = known
            .iter()
            .map(|(id, addrs)| format!("instance {id}: {}", addrs.join(", ")))
            .collect();
        eprintln!(
            "warning: these replicas belong to {} different instances ({}). A replica \
             restarted without its state (and without -b) founds a new instance: stop it and \
             rejoin it with -b ADDR of a running replica",
            known.len(),
            groups.join("; ")
        );
        return ExitCode::from(4);
    }
    if !args.json
        && let Some((id, _)) = known.first()
    {
        println!("instance {id}");
    }
    ExitCode::SUCCESS
}
