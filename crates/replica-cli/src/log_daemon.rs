//! `concoord logdaemon`: collects the log lines replicas started with
//! `-l HOST:PORT` ship (see `net_log` for the stream), and prints each on
//! stdout with the address of the replica that sent it.
//!
//! ```text
//! $ concoord logdaemon --listen 127.0.0.1:14999
//! 127.0.0.1:14000 2026-12-01T21:00:00.123Z  INFO concoord_replica::startup: started a new instance ...
//! ```
//!
//! With `--log-format json` each is a JSON object on one line:
//! `{"replica":"127.0.0.1:14000","record":{...}}` (a record the replica
//! wrote as JSON), or `{"replica":...,"line":"..."}` (a text record).
//!
//! The address is the one the replica announces in its hello: the daemon
//! has no authentication, so run it on a network you trust. Bounds: at most
//! [`CONNECTIONS_MAX`] replicas at once, [`LINE_BYTES_MAX`] bytes per line
//! (a longer one closes its connection), [`HELLO_TIMEOUT`] to say hello. A
//! slow stdout slows the readers, and through TCP the replicas' shippers,
//! which then drop lines rather than wait.

use crate::logging::LogFormat;
use crate::net_log::HELLO_PREFIX;
use futures::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec};
use tracing::{info, warn};

/// Replicas connected at once.
pub const CONNECTIONS_MAX: usize = 1024;
/// Longest line accepted (replicas cut theirs at `net_log::LINE_BYTES_MAX`).
pub const LINE_BYTES_MAX: usize = 64 << 10;
/// Time a connection has to send its hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest replica address accepted in a hello.
const ADDR_BYTES_MAX: usize = 256;
/// Lines waiting for stdout.
const PRINT_QUEUE_MAX: usize = 4096;

/// Binds the daemon's address, with an error that says what to do.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, concoord_replica::ReplicaError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| concoord_replica::ReplicaError::Listen {
            addr: format!("{addr} (--listen)"),
            source,
        })
}

/// Collects and prints lines until the process ends.
pub async fn run(listener: TcpListener, format: LogFormat) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "log daemon listening; start replicas with -l {addr}");
    }
    let (print_tx, print_rx) = mpsc::channel::<String>(PRINT_QUEUE_MAX);
    tokio::spawn(print(print_rx));
    concoord_replica::bounded_accept::accept_bounded(
        listener,
        CONNECTIONS_MAX,
        "log daemon",
        move |stream, peer| read_replica(stream, peer, format, print_tx.clone()),
    )
    .await;
}

/// Writes lines to stdout, flushing after each burst.
async fn print(mut lines: mpsc::Receiver<String>) {
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.recv().await {
        let mut batch = line;
        while let Ok(more) = lines.try_recv() {
            batch.push_str(&more);
        }
        if out.write_all(batch.as_bytes()).await.is_err() || out.flush().await.is_err() {
            // stdout is gone (a closed pipe): nothing left to do.
            return;
        }
    }
}

/// Reads one replica's stream: its hello, then its lines.
async fn read_replica(
    stream: TcpStream,
    peer: SocketAddr,
    format: LogFormat,
    print_tx: mpsc::Sender<String>,
) {
    let mut lines = FramedRead::new(stream, LinesCodec::new_with_max_length(LINE_BYTES_MAX));
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, lines.next()).await {
        Ok(Some(Ok(line))) => line,
        Ok(Some(Err(e))) => {
            warn!(%peer, "closed a connection before its hello: {e}");
            return;
        }
        Ok(None) => return,
        Err(_) => {
            warn!(%peer, "closed a connection that sent no hello within {HELLO_TIMEOUT:?}");
            return;
        }
    };
    let Some(replica) = replica_of(&hello) else {
        warn!(%peer, "closed a connection that is not a replica's log stream (expected `{HELLO_PREFIX}ADDR`); is -l pointing at the right port?");
        return;
    };
    info!(%peer, %replica, "replica connected");
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                if print_tx
                    .send(render(&replica, &line, format))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                warn!(%peer, %replica, "closed the connection: {e}");
                return;
            }
        }
    }
    info!(%peer, %replica, "replica disconnected");
}

/// The replica address a hello announces, if it is one.
pub fn replica_of(hello: &str) -> Option<String> {
    let addr = hello.strip_prefix(HELLO_PREFIX)?.trim();
    let ok = !addr.is_empty()
        && addr.len() <= ADDR_BYTES_MAX
        && !addr.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| addr.to_string())
}

/// One output line (with its newline).
pub fn render(replica: &str, line: &str, format: LogFormat) -> String {
    // Control characters are escaped so that no replica can move the
    // terminal's cursor or forge another replica's lines.
    match format {
        LogFormat::Text => format!("{replica} {}\n", escape_controls(line)),
        LogFormat::Json => {
            let value = match serde_json::from_str::<serde_json::Value>(line) {
                Ok(record @ serde_json::Value::Object(_)) => {
                    serde_json::json!({ "replica": replica, "record": record })
                }
                _ => serde_json::json!({ "replica": replica, "line": line }),
            };
            format!("{value}\n")
        }
    }
}

/// `line` with its control characters escaped (`\u{1b}`).
fn escape_controls(line: &str) -> String {
    let mut clean = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() {
            clean.extend(c.escape_default());
        } else {
            clean.push(c);
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_names_the_replica_or_is_refused() {
        assert_eq!(
            replica_of("concoord-log 1 127.0.0.1:14000").as_deref(),
            Some("127.0.0.1:14000")
        );
        assert_eq!(replica_of("concoord-log 2 127.0.0.1:14000"), None);
        assert_eq!(replica_of("GET / HTTP/1.1"), None);
        assert_eq!(replica_of("concoord-log 1 a b"), None);
        assert_eq!(
            replica_of(&format!("concoord-log 1 {}", "a".repeat(300))),
            None
        );
    }

    #[test]
    fn lines_are_printed_with_the_replica_address() {
        assert_eq!(render("r:1", "hello", LogFormat::Text), "r:1 hello\n");
        assert_eq!(
            render("r:1", "a\u{1b}[2Jb", LogFormat::Text),
            "r:1 a\\u{1b}[2Jb\n"
        );
        let json = render("r:1", r#"{"level":"INFO"}"#, LogFormat::Json);
        assert_eq!(
            json,
            "{\"record\":{\"level\":\"INFO\"},\"replica\":\"r:1\"}\n"
        );
        let json = render("r:1", "plain", LogFormat::Json);
        assert_eq!(json, "{\"line\":\"plain\",\"replica\":\"r:1\"}\n");
    }
}
