//! Ships log lines to a `concoord logdaemon` (`-l HOST:PORT`), without ever
//! making the replica wait for it.
//!
//! ```text
//!  any thread ──tracing event──▶ fmt layer ──▶ NetLog::push ──try_send──▶ ┌ bounded queue ┐
//!                                                  │ full: count a drop   │ (lines, bytes) │
//!                                                  ▼                      └───────┬────────┘
//!                                           lines_dropped()                shipper thread:
//!                                       (metrics, drop notices)     connect / write / reconnect
//! ```
//!
//! Logging a line costs a formatted copy and a `try_send`: a slow, full or
//! absent daemon makes lines drop, never the caller block. The shipper is a
//! plain thread with blocking sockets (it exists before any async runtime,
//! and must not log through `tracing` itself): it connects, writes, and on
//! any error reconnects with back-off; a write stuck for [`WRITE_TIMEOUT`]
//! counts as an error. Lines wait in the queue while it reconnects, up to
//! the bound.
//!
//! The stream (see `log_daemon`): UTF-8, one line per record, each ended by
//! `\n`. The first line is the hello `concoord-log 1 ADDR`, where ADDR is the
//! replica's own address; every later line is a log record as the console
//! shows it (`--log-format`), at most [`LINE_BYTES_MAX`] bytes (longer ones
//! are cut), with newlines inside a record replaced by spaces. After lines
//! were dropped, the next connection (or the same one, once it catches up)
//! carries a line `concoord-log: dropped N log line(s) ...` first.
//!
//! Bounds: [`QUEUE_BYTES_MAX`] bytes and `--log-buffer-lines` lines queued,
//! so at most ~1 MiB held whatever the log rate.

use concoord_replica::metrics;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

/// Longest record shipped, in bytes; longer ones are cut.
pub const LINE_BYTES_MAX: usize = 8 << 10;
/// Bytes of lines queued for the shipper at most.
pub const QUEUE_BYTES_MAX: usize = 1 << 20;
/// Lines queued for the shipper at most, unless `--log-buffer-lines` says.
pub const QUEUE_LINES_DEFAULT: usize = 4096;
/// A write that has not completed in this long is an error: reconnect.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection delays double from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The hello's first words: the protocol and its version.
pub const HELLO_PREFIX: &str = "concoord-log 1 ";

/// Log lines the network logger dropped so far (queue full, or lost with a
/// connection). The count is kept by the replica runtime, which exports it
/// as a metric.
pub fn lines_dropped() -> u64 {
    metrics::log_lines_dropped()
}

/// The producer side: what the tracing layer writes to.
#[derive(Clone, Debug)]
pub struct NetLog {
    queue: SyncSender<String>,
    queued_bytes: Arc<AtomicUsize>,
}

impl NetLog {
    /// Starts the shipper thread towards `daemon`, announcing `me`, with at
    /// most `lines_max` lines queued.
    pub fn start(daemon: String, me: String, lines_max: usize) -> io::Result<NetLog> {
        let (queue, lines) = std::sync::mpsc::sync_channel(lines_max.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let shipper = Shipper {
            daemon,
            me,
            lines,
            queued_bytes: queued_bytes.clone(),
            reported: 0,
        };
        std::thread::Builder::new()
            .name("concoord-net-log".into())
            .spawn(move || shipper.run())?;
        Ok(NetLog {
            queue,
            queued_bytes,
        })
    }

    /// Queues one formatted record, or counts it dropped. Never blocks.
    pub fn push(&self, record: &[u8]) {
        let line = to_line(record);
        let bytes = line.len();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > QUEUE_BYTES_MAX {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            metrics::count_log_line_dropped();
            return;
        }
        match self.queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                metrics::count_log_line_dropped();
            }
        }
    }
}

/// One record as a line: valid UTF-8, no newline inside, cut to
/// [`LINE_BYTES_MAX`], ended by `\n`.
pub fn to_line(record: &[u8]) -> String {
    let text = String::from_utf8_lossy(record);
    let text = text.trim_end_matches(['\n', '\r']);
    let mut end = text.len().min(LINE_BYTES_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut line: String = text[..end]
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if end < text.len() {
        line.push_str(" [cut]");
    }
    line.push('\n');
    line
}

/// A writer for one record (tracing's fmt layer writes each event at once).
pub struct RecordWriter<'a> {
    log: &'a NetLog,
}

impl Write for RecordWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.log.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for NetLog {
    type Writer = RecordWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        RecordWriter { log: self }
    }
}

/// The consumer side, on its own thread.
struct Shipper {
    daemon: String,
    me: String,
    lines: Receiver<String>,
    queued_bytes: Arc<AtomicUsize>,
    /// Drops already reported in the stream.
    reported: u64,
}

impl Shipper {
    fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.connect() {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    if self.ship(stream).is_ok() {
                        return;
                    }
                }
                Err(_) => {
                    // Nothing to tell but through the daemon we cannot reach;
                    // lines keep queueing (then dropping) meanwhile.
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let addrs: Vec<SocketAddr> = self.daemon.to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    s.set_nodelay(true)?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Writes lines until the connection fails (`Err`), or the process
    /// drops its logger (`Ok`).
    fn ship(&mut self, stream: TcpStream) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(64 << 10, stream);
        out.write_all(format!("{HELLO_PREFIX}{}\n", self.me).as_bytes())?;
        self.report_drops(&mut out)?;
        out.flush()?;
        loop {
            let line = match self.lines.recv_timeout(Duration::from_millis(500)) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    self.report_drops(&mut out)?;
                    out.flush()?;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return out.flush();
                }
            };
            self.write_line(&mut out, line)?;
            // Whatever else is queued goes in the same flush.
            while let Ok(line) = self.lines.try_recv() {
                self.write_line(&mut out, line)?;
            }
            self.report_drops(&mut out)?;
            out.flush()?;
        }
    }

    fn write_line(&mut self, out: &mut impl Write, line: String) -> io::Result<()> {
        self.queued_bytes.fetch_sub(line.len(), Ordering::Relaxed);
        out.write_all(line.as_bytes()).inspect_err(|_| {
            // This line is lost with the connection.
            metrics::count_log_line_dropped();
        })
    }

    fn report_drops(&mut self, out: &mut impl Write) -> io::Result<()> {
        let dropped = lines_dropped();
        if dropped > self.reported {
            let notice = format!(
                "concoord-log: dropped {} log line(s) while the log daemon was slow or unreachable ({} in all)\n",
                dropped - self.reported,
                dropped
            );
            out.write_all(notice.as_bytes())?;
            self.reported = dropped;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_one_line_cut_to_the_limit() {
        assert_eq!(to_line(b"a\nb\n"), "a b\n");
        let long = "é".repeat(LINE_BYTES_MAX);
        let line = to_line(long.as_bytes());
        assert!(line.len() <= LINE_BYTES_MAX + " [cut]\n".len());
        assert!(line.ends_with(" [cut]\n"));
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        // A daemon address nobody listens on: the shipper keeps reconnecting.
        let log = NetLog::start("127.0.0.1:9".into(), "me".into(), 2).expect("start");
        let before = lines_dropped();
        for _ in 0..10 {
            log.push(b"line\n");
        }
        assert!(
            lines_dropped() >= before + 8,
            "{}",
            lines_dropped() - before
        );
    }

    #[test]
    fn a_daemon_that_never_reads_never_makes_the_logger_wait() {
        // It accepts (the kernel does, into the backlog) and never reads.
        let daemon = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = daemon.local_addr().expect("addr").to_string();
        let log = NetLog::start(addr, "me".into(), QUEUE_LINES_DEFAULT).expect("start");
        let before = lines_dropped();
        let record = format!("{}\n", "x".repeat(199));
        let started = std::time::Instant::now();
        // 20 MB: more than the socket buffers and the queue hold.
        for _ in 0..100_000 {
            log.push(record.as_bytes());
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(3),
            "logging waited: {elapsed:?}"
        );
        assert!(lines_dropped() > before, "a full queue must drop");
        drop(daemon);
    }
}
