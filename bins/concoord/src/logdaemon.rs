//! `concoord logdaemon`: prints the log lines of replicas started with
//! `-l ADDR:PORT` (the collecting is `concoord_replica_cli::log_daemon`).

use clap::Args;
use concoord_replica_cli::log_daemon;
use concoord_replica_cli::logging::LogFormat;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Args)]
pub struct LogDaemonArgs {
    /// Address and port to collect log lines on (replicas' -l).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:14999")]
    listen: SocketAddr,
    /// Output: text ("REPLICA LINE") or json (one object per line).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Debug logging of the daemon itself (on stderr).
    #[arg(short = 'd', long = "debug")]
    debug: bool,
}

pub fn run(args: LogDaemonArgs) -> ExitCode {
    concoord_replica_cli::cli::init_logging(args.debug);
    concoord_replica_cli::report(concoord_transport::cli::block_on(async {
        let listener = log_daemon::bind(args.listen).await?;
        log_daemon::run(listener, args.log_format).await;
        Ok(())
    }))
}
