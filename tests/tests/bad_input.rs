//! Bad input never takes a replica down: random bytes, an oversized length
//! prefix, garbage msgpack in a valid frame, a wrong protocol version and a
//! wrong token each get that connection refused or closed, while the replica
//! keeps serving everyone else.

use concoord_client::proxies::Counter;
use concoord_client::{Client, ClientError, ClientOptions};
use concoord_integration_tests::{Replica, runtime, status, wait_until};
use concoord_transport::handshake::connect_client;
use concoord_transport::wire::{Hello, HelloReply, MAGIC, Role};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn serving(test: &str, ip: &str, extra: &[&str]) -> Replica {
    let r = Replica::start(test, ip, 14000, None, extra);
    let addr = r.addr.clone();
    wait_until(Duration::from_secs(10), "the replica to lead", || {
        status(&addr).is_some_and(|s| s.role == "leader")
    });
    r
}

/// Sends raw bytes, then reads until the replica closes the connection.
/// Returns what it answered before closing.
async fn send_raw_and_wait_for_close(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the replica did not close the connection");
    answer
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

async fn still_serves(addr: &str) {
    let c = Counter::connect(addr)
        .await
        .expect("a good client connects");
    let before = c.getvalue().await.expect("read");
    c.increment().await.expect("write");
    assert_eq!(c.getvalue().await.expect("read"), before + 1);
}

#[test]
fn malformed_connections_are_closed_and_the_replica_keeps_serving() {
    let r = serving("bad_input", "127.0.5.1", &[]);
    let addr = r.addr.clone();
    runtime().block_on(async {
        // Random bytes (their first four read as a huge length).
        let junk: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(97) ^ 0xde) as u8)
            .collect();
        send_raw_and_wait_for_close(&addr, &junk).await;
        still_serves(&addr).await;

        // An oversized length prefix: refused before any buffering.
        send_raw_and_wait_for_close(&addr, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await;
        still_serves(&addr).await;

        // A valid frame holding garbage msgpack.
        send_raw_and_wait_for_close(&addr, &frame(&[0xc1, 0xc1, 0xc1])).await;
        still_serves(&addr).await;

        // A well-formed hello of another protocol version: told why, then closed.
        let hello = Hello {
            magic: MAGIC,
            version: 999,
            role: Role::Client { session: None },
            token: None,
            nonce: Vec::new(),
            instance: None,
        };
        let answer =
            send_raw_and_wait_for_close(&addr, &frame(&rmp_serde::to_vec(&hello).expect("encode")))
                .await;
        let reply: HelloReply = rmp_serde::from_slice(&answer[4..]).expect("a HelloReply");
        match reply {
            HelloReply::Rejected { reason } => {
                assert!(reason.contains("protocol version 999"), "{reason}")
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        still_serves(&addr).await;

        // A good handshake followed by garbage, and by an oversized frame.
        for bad in [frame(&[0x92, 0xc1]), vec![0x7f, 0xff, 0xff, 0xff]] {
            let (_, _, conn) = connect_client(&addr, None, None, Duration::from_secs(2))
                .await
                .expect("handshake");
            let mut stream = conn.into_inner();
            stream.write_all(&bad).await.expect("write");
            let mut rest = Vec::new();
            let closed =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
            assert!(closed.is_ok(), "connection not closed after a bad frame");
            still_serves(&addr).await;
        }

        // Unknown methods and bad arguments are errors for that call only.
        let client = Client::connect(&addr).await.expect("connect");
        let err = client
            .call::<_, ()>("explode", &())
            .await
            .expect_err("unknown method");
        assert!(err.to_string().contains("unknown method"), "{err}");
        let err = client
            .call::<_, ()>("increment", &(1, 2))
            .await
            .expect_err("bad arguments");
        assert!(err.to_string().contains("bad arguments"), "{err}");
        still_serves(&addr).await;
    });
}

#[test]
fn a_wrong_or_missing_token_is_refused_with_a_clear_error() {
    let r = Replica::start("token", "127.0.5.2", 14000, None, &["-t", "s3cret"]);
    let addr = r.addr.clone();
    runtime().block_on(async {
        let mut last = None;
        for token in [None, Some("guess".to_string())] {
            let options = ClientOptions {
                token,
                call_timeout: Duration::from_secs(5),
                ..ClientOptions::default()
            };
            let start = std::time::Instant::now();
            let err = loop {
                match Client::connect_with(&addr, options.clone()).await {
                    Err(ClientError::Refused(reason)) => break reason,
                    Err(ClientError::Unreachable { .. })
                        if start.elapsed() < Duration::from_secs(10) =>
                    {
                        continue;
                    }
                    other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
                }
            };
            assert!(err.contains("authentication failed"), "{err}");
            last = Some(err);
        }
        assert!(last.is_some());
        let options = ClientOptions {
            token: Some("s3cret".into()),
            ..ClientOptions::default()
        };
        let client = Client::connect_with(&addr, options)
            .await
            .expect("the right token works");
        client
            .call::<_, ()>("increment", &())
            .await
            .expect("increment");
    });
}
