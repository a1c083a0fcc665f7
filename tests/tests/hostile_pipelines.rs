//! Hostile pipelines against a one-thread replica (`--threads 1`, the
//! default), from clients that need no credentials (no `-t`), found by a
//! review of how batches reach the driver:
//!
//! 1. `Call` frames whose `done` list fills 16 MiB (~5.6 million ranges),
//!    back to back. The calls budget counts a call's method and arguments,
//!    and executing replicas use 64 ranges, but the whole list went into
//!    the log: the leader encoded and every replica decoded ~16 MiB per
//!    call. The leader was deposed (worst increment 3.2 s, 809 MB resident).
//!    Now a call with more than `DONE_RANGES_PER_CALL` ranges is refused as
//!    soon as the list's length is read (`bounded_seq`).
//! 2. 16 connections pipelining `Batch` frames of 1 024 `increment` calls,
//!    reading replies. Each connection has at most 2 048 calls waiting for
//!    the driver (`server::send_in_parts`); a lone client's call waits
//!    behind that backlog and the calls admitted before it (about 1 s
//!    here), but the leader keeps its ballot and its memory stays bounded.
//!
//! The tests run one at a time (each loads both cores).

use concoord_integration_tests::{COUNTER, Cluster, hostile_connections, worst_increment_while};
use concoord_transport::wire::{CLIENT_FRAME_BYTES_MAX, CallRequest, ClientFrame};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn framed(frame: &ClientFrame) -> Vec<u8> {
    let body = rmp_serde::to_vec(frame).expect("encode");
    assert!(body.len() <= CLIENT_FRAME_BYTES_MAX);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A `Batch` of exactly 1 024 calls of `method`, seqs from `first`, each
/// padded with a few `done` ranges so the frame is above 64 KiB (the large
/// inbound pool, which a lone client's small frames do not share).
fn batch_1024(method: &str, first: u64, pad: usize) -> Vec<u8> {
    let far = 1u64 << 60;
    let calls = (0..1024u64)
        .map(|i| CallRequest {
            seq: first + i,
            acked: (first + i).saturating_sub(1),
            method: method.into(),
            args: vec![0x90],
            done: [(far, far), (far + 2, far + 2), (far + 4, far + 4)][..pad].to_vec(),
        })
        .collect();
    framed(&ClientFrame::Batch(calls))
}

/// `conns` connections, each sending `frame(seq)` back to back (seq
/// advancing by `step`) while reading and discarding replies, and
/// reconnecting when the replica closes it; until `stop`.
async fn flood(
    addr: String,
    stop: Arc<AtomicBool>,
    conns: u64,
    sent: Arc<AtomicU64>,
    step: u64,
    frame: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
) {
    let running = stop.clone();
    hostile_connections(addr, conns as usize, stop, move |conn| {
        let (stop, sent, frame) = (running.clone(), sent.clone(), frame.clone());
        async move {
            let (mut rd, mut wr) = tokio::io::split(conn);
            let reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
            let mut seq = 1;
            while !stop.load(Ordering::Relaxed) {
                let f = frame(seq);
                seq += step;
                if wr.write_all(&f).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            reader.abort();
        }
    })
    .await
}

/// One test at a time: each loads both cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// What an attack did to the leader.
struct Outcome {
    deposed: bool,
    worst_increment: Duration,
    peak_resident_kb: Option<u64>,
}

/// Attacks the leader of a fresh 3-replica cluster with `flood` for
/// HOSTILE_SECS (8) while a lone client increments there.
fn attack(
    test: &str,
    ip: &str,
    conns: u64,
    step: u64,
    frame: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
) -> Outcome {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let secs = env_or("HOSTILE_SECS", 8);
    let mut cluster = Cluster::start_with(COUNTER, test, ip, 3, &[], false);
    let leader = cluster.leader().expect("a leader");
    let addr = cluster.replicas[leader].addr.clone();
    let before = cluster.status(&addr).expect("status").ballot;
    let sent = Arc::new(AtomicU64::new(0));
    let sent2 = sent.clone();
    let worst_increment = worst_increment_while(&addr, secs, move |addr, stop| {
        flood(addr, stop, conns, sent2, step, frame)
    });
    let after = cluster.highest_ballot();
    let peak_resident_kb = cluster.replicas[leader]
        .pid()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        });
    eprintln!(
        "{test}: connections {conns}, frames sent {}, ballot before {before:?}, highest after {after:?}, worst increment {worst_increment:?}, leader peak resident {peak_resident_kb:?} kB",
        sent.load(Ordering::Relaxed)
    );
    Outcome {
        deposed: after != Some(before),
        worst_increment,
        peak_resident_kb,
    }
}

/// Liveness and memory: 16 connections pipelining frames of 1 024
/// `increment` calls for 8 s neither depose the leader nor take its peak
/// resident memory past 1 GiB, and a lone client's increment is answered
/// within 5 s (about 1 s measured: the backlog the connections may queue).
#[test]
fn pipelined_batches_of_writes_do_not_depose_the_leader() {
    // Alternately above and below 64 KiB: both inbound pools fill.
    let n = AtomicU64::new(0);
    let frame = Arc::new(move |seq| {
        let pad = if n.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            3
        } else {
            0
        };
        batch_1024("increment", seq, pad)
    });
    let out = attack("hostile_pipelines_writes", "127.0.213.1", 16, 1024, frame);
    assert!(!out.deposed, "the leader was deposed");
    assert!(
        out.worst_increment < Duration::from_secs(5),
        "worst increment {:?}",
        out.worst_increment
    );
    assert!(
        out.peak_resident_kb.is_some_and(|kb| kb < 1 << 20),
        "leader peak resident {:?} kB",
        out.peak_resident_kb
    );
}

/// A `Call` of `increment` whose `done` list fills a 16 MiB frame.
fn huge_done_call(seq: u64) -> Vec<u8> {
    // A range of two positive fixints encodes in 3 bytes.
    let n = (CLIENT_FRAME_BYTES_MAX - 64) / 3;
    let call = CallRequest {
        seq,
        acked: 0,
        method: "increment".into(),
        args: vec![0x90],
        done: vec![(100, 100); n],
    };
    framed(&ClientFrame::Call(call))
}

/// Liveness: 16 MiB `Call` frames whose `done` list is ~5.6 million
/// ranges, sent back to back for 8 s by one client, neither depose the
/// one-thread leader nor make a lone client's increment wait past the
/// 500 ms election timeout.
#[test]
fn huge_done_lists_do_not_stall_a_one_thread_leader() {
    let out = attack(
        "hostile_pipelines_done",
        "127.0.214.1",
        1,
        1,
        Arc::new(huge_done_call),
    );
    assert!(
        !out.deposed && out.worst_increment < Duration::from_millis(500),
        "deposed: {}, worst increment {:?}",
        out.deposed,
        out.worst_increment
    );
}
