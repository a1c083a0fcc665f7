//! Values close to the call size limit, under load: eight concurrent 11 MiB
//! writes are replicated and answered (the replicas split what they send
//! each other so that no peer frame outgrows its limit), and a call above the
//! limit is refused with a typed error before it is sent, with a clear
//! message from `concoord call`.

use concoord_client::proxies::KeyValue;
use concoord_client::{CallError, Client, ClientError, ClientOptions};
use concoord_integration_tests::{Cluster, ReplicaSpec, binary, log_dir, output_within, runtime};
use concoord_transport::handshake::connect_client;
use concoord_transport::wire::{
    CALL_BYTES_MAX, CallRequest, ClientFrame, PEER_FRAME_BYTES_MAX, ReplicaFrame,
};
use futures::{SinkExt, StreamExt};
use std::process::Command;
use std::time::{Duration, Instant};

const KEYVALUE: ReplicaSpec = ReplicaSpec::builtin("concoord.object.keyvalue.KeyValue");

/// A value of about 11 MiB, different per writer and round.
fn value(writer: usize, round: usize) -> String {
    let unit = format!("w{writer}r{round}-");
    unit.repeat((11 << 20) / unit.len())
}

fn patient() -> ClientOptions {
    ClientOptions {
        call_timeout: Duration::from_secs(60),
        ..ClientOptions::default()
    }
}

#[test]
fn concurrent_eleven_mib_puts_complete_and_every_replica_holds_them() {
    let writers = 8;
    let rounds = 2;
    let mut cluster = Cluster::start_spec(KEYVALUE, "large_values", "127.0.40.1", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let boot = boot.clone();
            tasks.push(tokio::spawn(async move {
                let kv = KeyValue::connect_with(&boot, patient())
                    .await
                    .expect("connect");
                for r in 0..rounds {
                    kv.put(format!("k{w}"), value(w, r))
                        .await
                        .unwrap_or_else(|e| panic!("writer {w} round {r}: {e}"));
                }
            }));
        }
        for t in tasks {
            t.await.expect("every 11 MiB put is answered");
        }
    });
    eprintln!(
        "{} puts of 11 MiB by {writers} concurrent writers took {:?}",
        writers * rounds,
        started.elapsed()
    );
    rt.block_on(async {
        let kv = KeyValue::connect_with(&boot, patient())
            .await
            .expect("connect");
        for w in 0..writers {
            let got = kv.get(format!("k{w}")).await.expect("get");
            assert!(
                got.as_deref() == Some(value(w, rounds - 1).as_str()),
                "k{w} holds the last value written"
            );
        }
    });
    let states = cluster.settled_states();
    assert!(
        states.iter().all(|s| *s == states[0]),
        "every replica holds the same state: {states:?}"
    );
    for r in &cluster.replicas {
        let s = cluster.status(&r.addr).expect("status");
        eprintln!(
            "{}: largest peer frame {} bytes",
            r.addr, s.peer_frame_bytes_max
        );
        assert!(
            s.peer_frame_bytes_max > 0 && (s.peer_frame_bytes_max as usize) < PEER_FRAME_BYTES_MAX,
            "peer frames stay below the limit"
        );
    }
}

#[test]
fn a_call_above_the_size_limit_is_refused_with_a_clear_error() {
    let cluster = Cluster::start_spec(KEYVALUE, "call_too_large", "127.0.40.2", 1);
    let addr = cluster.replicas[0].addr.clone();
    let too_big = "x".repeat(CALL_BYTES_MAX + 1);
    runtime().block_on(async {
        // The client refuses it before sending, with a typed error.
        let client = Client::connect(&addr).await.expect("connect");
        match client
            .call::<_, Option<String>>("put", &("k", too_big.as_str()))
            .await
        {
            Err(ClientError::TooLarge {
                method,
                bytes,
                limit,
            }) => {
                assert_eq!(method, "put");
                assert!(bytes > limit && limit == CALL_BYTES_MAX as u64);
            }
            other => panic!("expected ClientError::TooLarge, got {other:?}"),
        }
        // The client still works.
        let kv = KeyValue::connect(&addr).await.expect("connect");
        kv.put("k".into(), "small".into()).await.expect("put");

        // A client that skips the check is refused by the replica.
        let (_, _, mut conn) = connect_client(&addr, None, None, Duration::from_secs(2))
            .await
            .expect("connect");
        let args = rmp_serde::to_vec(&("k", too_big.as_str())).expect("encode");
        let call = CallRequest {
            seq: 1,
            acked: 0,
            method: "put".into(),
            args,
            done: Vec::new(),
        };
        conn.send(ClientFrame::Call(call)).await.expect("send");
        let outcome = loop {
            match conn.next().await {
                Some(Ok(ReplicaFrame::Reply { seq: 1, outcome })) => break outcome,
                Some(Ok(_)) => continue,
                other => panic!("no reply: {other:?}"),
            }
        };
        assert!(
            matches!(outcome, Err(CallError::TooLarge { .. })),
            "the replica refuses it: {outcome:?}"
        );
        assert_eq!(
            kv.get("k".into()).await.expect("get").as_deref(),
            Some("small")
        );
    });

    // `concoord call` says what is wrong (a value this large comes from a
    // file: no command line holds it).
    let args_file = log_dir("call_too_large").join("args.json");
    std::fs::write(
        &args_file,
        serde_json::to_vec(&("k", too_big.as_str())).expect("json"),
    )
    .expect("write the arguments");
    let out = output_within(
        Command::new(binary("concoord"))
            .args(["call", "-b", &addr, "put", "--args-file"])
            .arg(&args_file),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("too large") && stderr.contains("12 MiB"),
        "a clear message: {stderr}"
    );
}
