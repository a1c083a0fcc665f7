//! `concoord add` and `concoord remove`: view changes by an operator. Both
//! prove the instance secret (`--peer-secret FILE`): the replicas refuse view
//! changes, and stopping a member, from anyone else.

use crate::status::fetch;
use clap::Args;
use concoord_transport::InstanceSecret;
use concoord_transport::addresses::parse_bootstrap;
use concoord_transport::admin::admin_request_tls;
use concoord_transport::cli::TlsArgs;
use concoord_transport::tls_config::ClientTls;
use concoord_transport::wire::{AdminReply, AdminRequest};
use paxos_core::{Member, NodeId};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);
const REDIRECTS_MAX: usize = 5;

/// What proves an operator: the instance secret (and the token, if any).
#[derive(Args)]
pub struct OperatorArgs {
    /// The instance's security token.
    #[arg(short = 't', long = "token")]
    token: Option<String>,
    /// The instance secret file (the one the replicas were started with).
    #[arg(long, value_name = "FILE", required_unless_present = "no_peer_secret")]
    peer_secret: Option<PathBuf>,
    /// The instance runs without a secret (its replicas were started with
    /// --no-peer-secret).
    #[arg(long, conflicts_with = "peer_secret")]
    no_peer_secret: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

/// An operator's loaded credentials.
struct Operator {
    secret: InstanceSecret,
    token: Option<String>,
    tls: Option<ClientTls>,
}

impl OperatorArgs {
    /// Loads the instance secret from `--peer-secret`, or the open
    /// instance's with `--no-peer-secret`.
    fn load(&self) -> Result<Operator, String> {
        let secret = match (&self.peer_secret, self.no_peer_secret) {
            (Some(f), _) => InstanceSecret::load(f).map_err(|e| e.to_string())?,
            (None, true) => InstanceSecret::open(),
            (None, false) => return Err("pass the instance secret with --peer-secret FILE".into()),
        };
        Ok(Operator {
            secret,
            token: self.token.clone(),
            tls: self.tls.client().map_err(|e| e.to_string())?,
        })
    }
}

#[derive(Args)]
pub struct AddArgs {
    /// Replicas of the instance (host:port, comma-separated).
    #[arg(short = 'b', long = "boot", value_name = "BOOTSTRAP")]
    boot: String,
    /// Address of the running replica to add (it must have been started with
    /// -b so it waits to join, or be a replica removed earlier).
    node: String,
    #[command(flatten)]
    operator: OperatorArgs,
}

#[derive(Args)]
pub struct RemoveArgs {
    /// Replicas of the instance (host:port, comma-separated).
    #[arg(short = 'b', long = "boot", value_name = "BOOTSTRAP")]
    boot: String,
    /// The replica to remove: its address (host:port) or its node id (hex,
    /// as `concoord status` shows it).
    node: String,
    /// Leave the removed replica running (by default it is told to stop, so
    /// it does not ask to rejoin).
    #[arg(long)]
    keep_running: bool,
    #[command(flatten)]
    operator: OperatorArgs,
}

/// Sends a view change to the instance, following redirects to the leader.
async fn propose(boot: &[String], op: &Operator, request: AdminRequest) -> Result<(), String> {
    let mut last = String::from("no replica answered");
    for start in boot {
        let mut addr = start.clone();
        for _ in 0..REDIRECTS_MAX {
            match admin_request_tls(
                &addr,
                Some(&op.secret),
                op.token.clone(),
                op.tls.as_ref(),
                request.clone(),
                TIMEOUT,
            )
            .await
            {
                Ok(AdminReply::Accepted) => return Ok(()),
                Ok(AdminReply::NotLeader { leader: Some(l) }) => addr = l,
                Ok(AdminReply::NotLeader { leader: None }) => {
                    last = "no leader yet (an election is running); retry".into();
                    break;
                }
                Ok(other) => return Err(format!("{addr} refused: {other:?}")),
                Err(e) => {
                    last = e.to_string();
                    break;
                }
            }
        }
    }
    Err(last)
}

fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The `-b` list, or the usage exit code after saying what is wrong.
fn boot_list(boot: &str) -> Result<Vec<String>, ExitCode> {
    parse_bootstrap(boot).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

pub fn add(args: AddArgs) -> ExitCode {
    let boot = match boot_list(&args.boot) {
        Ok(b) => b,
        Err(code) => return code,
    };
    report(concoord_transport::cli::block_on(async {
        let op = args.operator.load()?;
        let status = fetch(&args.node, op.token.clone(), op.tls.as_ref(), TIMEOUT)
            .await
            .map_err(|e| format!("cannot ask {} who it is: {e}", args.node))?;
        let member = Member {
            id: status.node,
            addr: status.addr.clone(),
        };
        propose(&boot, &op, AdminRequest::Join { member }).await?;
        Ok(format!(
            "proposed adding {} (node {}); it counts once the view change takes effect",
            status.addr, status.node
        ))
    }))
}

pub fn remove(args: RemoveArgs) -> ExitCode {
    let boot = match boot_list(&args.boot) {
        Ok(b) => b,
        Err(code) => return code,
    };
    report(concoord_transport::cli::block_on(async {
        let op = args.operator.load()?;
        let by_addr = args.node.contains(':');
        let node = if by_addr {
            match fetch(&args.node, op.token.clone(), op.tls.as_ref(), TIMEOUT).await {
                Ok(s) => s.node,
                // A dead replica cannot say who it is: find it in the view.
                Err(e) => find_in_view(&boot, &args.node, &op)
                    .await
                    .ok_or_else(|| format!("{} is not in the view ({e})", args.node))?,
            }
        } else {
            NodeId(
                u64::from_str_radix(&args.node, 16)
                    .map_err(|_| format!("{:?} is neither host:port nor a node id", args.node))?,
            )
        };
        propose(&boot, &op, AdminRequest::Remove { node }).await?;
        if by_addr && !args.keep_running {
            let _ = admin_request_tls(
                &args.node,
                Some(&op.secret),
                op.token.clone(),
                op.tls.as_ref(),
                AdminRequest::Shutdown,
                TIMEOUT,
            )
            .await;
        }
        Ok(format!(
            "proposed removing node {node}; it stops counting once the view change takes effect"
        ))
    }))
}

/// The id of the member at `addr`, from any live replica's view.
async fn find_in_view(boot: &[String], addr: &str, op: &Operator) -> Option<NodeId> {
    for b in boot {
        if let Ok(s) = fetch(b, op.token.clone(), op.tls.as_ref(), TIMEOUT).await
            && let Some(m) = s.members.iter().find(|m| m.addr == addr)
        {
            return Some(m.node);
        }
    }
    None
}
