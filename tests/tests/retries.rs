//! Exactly-once across lost replies: a call retried after its reply was lost
//! gets the original reply and is not applied twice.

use concoord_client::proxies::Counter;
use concoord_client::{Client, ClientOptions};
use concoord_integration_tests::{Cluster, runtime};
use concoord_transport::handshake::connect_client;
use concoord_transport::wire::{CallRequest, ClientFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    r.read_exact(&mut body).await?;
    let mut frame = len.to_vec();
    frame.extend(body);
    Ok(frame)
}

/// A TCP proxy to `upstream`. On the first connection it passes every frame
/// up to the first call's reply, swallows that reply, and cuts the connection.
async fn lossy_proxy(listener: TcpListener, upstream: String, cut_next: Arc<AtomicBool>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(&upstream).await else {
            continue;
        };
        let cut = cut_next.swap(false, Ordering::SeqCst);
        tokio::spawn(async move {
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let up = tokio::io::copy(&mut cr, &mut sw);
            let down = async {
                if cut {
                    let welcome = read_frame(&mut sr).await?;
                    cw.write_all(&welcome).await?;
                    loop {
                        let frame = read_frame(&mut sr).await?;
                        let decoded: Result<ReplicaFrame, _> = rmp_serde::from_slice(&frame[4..]);
                        if matches!(decoded, Ok(ReplicaFrame::Reply { .. })) {
                            return Ok::<_, std::io::Error>(()); // the reply is lost
                        }
                        cw.write_all(&frame).await?;
                    }
                } else {
                    tokio::io::copy(&mut sr, &mut cw).await.map(|_| ())
                }
            };
            tokio::select! {
                _ = up => {}
                _ = down => {}
            }
        });
    }
}

#[test]
fn a_call_whose_reply_was_cut_off_gets_its_original_reply_on_retry_and_runs_once() {
    let mut cluster = Cluster::start("retries", "127.0.4.1", 3);
    let leader = cluster.leader().expect("a leader");
    let upstream = cluster.replicas[leader].addr.clone();
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.4.1:15000")
            .await
            .expect("bind proxy");
        let cut = Arc::new(AtomicBool::new(true));
        tokio::spawn(lossy_proxy(listener, upstream, cut.clone()));
        let options = ClientOptions {
            attempt_timeout: Duration::from_millis(500),
            ..ClientOptions::default()
        };
        // The client starts from the proxy; its retry goes to the proxy again
        // or to a replica it learned from the view: either way, a fresh
        // connection with the same client id and sequence number.
        let client = Client::connect_with("127.0.4.1:15000", options)
            .await
            .expect("connect");
        client
            .call::<_, ()>("increment", &())
            .await
            .expect("the retry succeeds");
        assert!(
            !cut.load(Ordering::SeqCst),
            "the first reply was really cut off"
        );
        let value = Counter::connect(&boot)
            .await
            .expect("connect")
            .getvalue()
            .await
            .expect("read");
        assert_eq!(value, 1, "the increment ran once");
    });
}

#[test]
fn a_resent_call_with_the_same_sequence_number_is_answered_from_the_table() {
    let mut cluster = Cluster::start("duplicates", "127.0.4.2", 1);
    let addr = cluster.replicas[0].addr.clone();
    let _ = cluster.leader();
    let rt = runtime();
    rt.block_on(async {
        let call = ClientFrame::Call(CallRequest {
            seq: 1,
            acked: 0,
            method: "increment".into(),
            args: vec![0x90],
            done: Vec::new(),
        });
        let mut replies = Vec::new();
        // The second connection resumes the first one's session with its ticket.
        let mut ticket = None;
        for _ in 0..2 {
            let (_, issued, mut conn) =
                connect_client(&addr, ticket.clone(), None, Duration::from_secs(2))
                    .await
                    .expect("connect");
            ticket = Some(issued);
            conn.send(call.clone()).await.expect("send");
            loop {
                match conn.next().await {
                    Some(Ok(ReplicaFrame::Reply { seq: 1, outcome })) => {
                        replies.push(outcome);
                        break;
                    }
                    Some(Ok(ReplicaFrame::View { .. })) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(replies[0], replies[1]);
        assert!(replies[0].is_ok());
        let value = Counter::connect(&addr)
            .await
            .expect("connect")
            .getvalue()
            .await
            .expect("read");
        assert_eq!(value, 1);
    });
}
