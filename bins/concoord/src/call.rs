//! `concoord call`: one method call from the shell.

use clap::Args;
use concoord_client::{CallError, Client, ClientError, ClientOptions};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code when the call itself failed (unknown method, bad arguments, an
/// error returned by the method).
const EXIT_CALL_FAILED: u8 = 1;
/// Exit code when no replica answered.
const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when a blocking call (a lock acquire, a barrier wait) was not
/// granted within `--timeout` and was cancelled.
const EXIT_WAIT_TIMED_OUT: u8 = 4;

#[derive(Args)]
pub struct CallArgs {
    /// Replicas of the instance (host:port, comma-separated), or the
    /// instance's domain (resolved through SRV _concoord._tcp.DOMAIN).
    #[arg(short = 'b', long = "boot", value_name = "BOOTSTRAP")]
    boot: String,
    /// The DNS server to resolve a -b domain with (default: the system's).
    #[arg(long, value_name = "ADDR:PORT")]
    dns_server: Option<std::net::SocketAddr>,
    /// Method to call.
    method: String,
    /// Arguments: each parsed as JSON if it parses (5, true, "x", [1,2]),
    /// otherwise taken as a string.
    args: Vec<String>,
    /// Read the arguments from FILE instead, as one JSON array (`-`: from
    /// standard input), e.g. for values too large for a command line. A
    /// call carries at most 12 MiB of method name and arguments.
    #[arg(long, value_name = "FILE", conflicts_with = "args")]
    args_file: Option<std::path::PathBuf>,
    /// Seconds to wait for a reply. A call that blocks (acquire, wait) waits
    /// this long to be granted, then is cancelled (exit code 4). The call
    /// belongs to this command's client session, which ends when it exits:
    /// a lock acquired here is released once the session expires.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// The instance's security token.
    #[arg(short = 't', long = "token")]
    token: Option<String>,
    /// After printing the reply, keep this command's session (and any lock
    /// or permit it acquired) alive for this many seconds, then release it.
    #[arg(long, value_name = "SECS")]
    hold: Option<f64>,
    #[command(flatten)]
    tls: concoord_transport::cli::TlsArgs,
}

/// Parses a shell argument: JSON if it is JSON, else a string.
pub fn parse_arg(arg: &str) -> serde_json::Value {
    serde_json::from_str(arg).unwrap_or_else(|_| serde_json::Value::String(arg.to_string()))
}

/// Reads the arguments of `--args-file`: a JSON array.
fn read_args_file(path: &std::path::Path) -> Result<Vec<serde_json::Value>, String> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("cannot read the arguments from standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the arguments from {}: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "the arguments in {} are not a JSON array: {e}",
            path.display()
        )
    })
}

pub fn run(args: CallArgs) -> ExitCode {
    let values: Vec<serde_json::Value> = match &args.args_file {
        Some(path) => match read_args_file(path) {
            Ok(values) => values,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => args.args.iter().map(|a| parse_arg(a)).collect(),
    };
    let encoded = match rmp_serde::to_vec(&values) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot encode the arguments: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = match args.tls.client() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = ClientOptions {
        token: args.token.clone(),
        tls,
        call_timeout: Duration::from_secs_f64(args.timeout.max(0.1)),
        dns_server: args.dns_server,
        ..ClientOptions::default()
    };
    // The proxies' `concoord_init` is the wire's `__concoordinit__`.
    let method = match args.method.as_str() {
        "concoord_init" => concoord_client::CONCOORD_INIT,
        other => other,
    };
    let outcome = concoord_transport::cli::block_on(async {
        let client = Client::connect_with(&args.boot, options).await?;
        let wait = Duration::from_secs_f64(args.timeout.max(0.1));
        let reply = client.call_raw_waiting(method, encoded, Some(wait)).await;
        if let (Ok(bytes), Some(hold)) = (&reply, args.hold) {
            print_reply(bytes);
            tokio::time::sleep(Duration::from_secs_f64(hold.max(0.0))).await;
            client.close().await;
        }
        reply
    });
    match outcome {
        Ok(_) if args.hold.is_some() => ExitCode::SUCCESS,
        Ok(bytes) => print_reply(&bytes),
        Err(e) => {
            let code = match &e {
                ClientError::Unreachable { .. }
                | ClientError::Timeout { .. }
                | ClientError::Resolve { .. } => EXIT_UNREACHABLE,
                ClientError::Call(CallError::WaitTimedOut) => EXIT_WAIT_TIMED_OUT,
                ClientError::Bootstrap(_) => 2,
                _ => EXIT_CALL_FAILED,
            };
            match &e {
                ClientError::Application { method, value } => {
                    let shown = rmp_serde::from_slice::<serde_json::Value>(value)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|_| format!("{} bytes", value.len()));
                    eprintln!("error: `{method}` returned an error: {shown}");
                }
                other => eprintln!("error: {other}"),
            }
            ExitCode::from(code)
        }
    }
}

/// Prints a reply as JSON.
fn print_reply(bytes: &[u8]) -> ExitCode {
    match rmp_serde::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the reply is not representable as JSON: {e}");
            ExitCode::from(EXIT_CALL_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_json_when_they_parse_else_strings() {
        assert_eq!(parse_arg("5"), serde_json::json!(5));
        assert_eq!(parse_arg("[1,2]"), serde_json::json!([1, 2]));
        assert_eq!(parse_arg("\"quoted\""), serde_json::json!("quoted"));
        assert_eq!(parse_arg("alice"), serde_json::json!("alice"));
    }
}
