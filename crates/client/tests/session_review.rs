//! The client's outcome reporting against a scripted fake replica on
//! loopback (schedules from an adversarial review): the client must say
//! `OutcomeUnknown` / `Timeout` whenever the call may have run, and retry
//! answers that are not final.

use concoord_client::{Client, ClientError, ClientOptions};
use concoord_transport::InstanceSecret;
use concoord_transport::handshake::{Accepted, Credentials, accept};
use concoord_transport::net::TcpListener;
use concoord_transport::wire::{CallError, ClientFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use std::time::Duration;

/// What the fake replica does with call 1 on its second connection.
#[derive(Clone, Copy)]
enum Second {
    /// Answers `SessionExpired` (the session expired meanwhile).
    SessionExpired,
    /// Answers `TooManyInFlight` the first time, then `Ok` to any retry.
    TooManyInFlightThenOk,
}

/// A fake replica: on the first connection it takes call 1 and drops the
/// connection without answering (it executed the call and crashed, or its
/// leader lost the reply); on the next connection (the client resuming its
/// session with its ticket, resending call 1) it answers per `second`.
async fn fake_replica(listener: TcpListener, second: Second) {
    let secret = InstanceSecret::generate();
    let instance = concoord_transport::InstanceCell::new(None);
    let creds = Credentials {
        me: Default::default(),
        instance: &instance,
        token: None,
        secret: &secret,
        sessions_not_before_ms: 0,
        client_slots: None,
        tls: None,
        members: None,
    };
    let mut connection = 0;
    let mut too_many_sent = false;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let Ok(Accepted::Client { mut conn, .. }) =
            accept(stream, &creds, Duration::from_secs(2)).await
        else {
            continue;
        };
        connection += 1;
        while let Some(Ok(frame)) = conn.next().await {
            let calls = match frame {
                ClientFrame::Call(c) => vec![c],
                ClientFrame::Batch(cs) => cs,
                ClientFrame::KeepAlive => {
                    let _ = conn.send(ReplicaFrame::Alive { leader: None }).await;
                    continue;
                }
                ClientFrame::Admin { .. } => continue,
            };
            for call in calls {
                if call.method != "increment" {
                    continue; // the close on drop
                }
                if connection == 1 {
                    // "Executed" call 1; the reply is lost with the connection.
                    break;
                }
                let outcome = match second {
                    Second::SessionExpired => Err(CallError::SessionExpired),
                    Second::TooManyInFlightThenOk if !too_many_sent => {
                        too_many_sent = true;
                        Err(CallError::TooManyInFlight { limit: 4096 })
                    }
                    Second::TooManyInFlightThenOk => Ok(serde_bytes::ByteBuf::from(vec![0xc0])),
                };
                let _ = conn
                    .send(ReplicaFrame::Reply {
                        seq: call.seq,
                        outcome,
                    })
                    .await;
            }
            if connection == 1 {
                break;
            }
        }
    }
}

async fn call_once(addr: &str, second: Second) -> Result<Vec<u8>, ClientError> {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = addr.to_string();
    let server = tokio::spawn(fake_replica(listener, second));
    let options = ClientOptions {
        call_timeout: Duration::from_secs(5),
        attempt_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        keepalive: Duration::from_millis(200),
        ..ClientOptions::default()
    };
    let client = Client::connect_with(&addr, options)
        .await
        .expect("connects");
    let result = client.call_raw("increment", vec![0x90]).await;
    drop(client);
    server.abort();
    result
}

/// Invariant 5: call 1 was sent on connection 1 (where it ran; the reply was
/// lost), the session then expired, and the resent copy is refused
/// `SessionExpired`. The client reports `Call(SessionExpired)`, which says
/// the call certainly did not run (errors.rs, docs/architecture.md).
#[tokio::test]
async fn a_call_resent_after_a_lost_reply_and_refused_as_expired_may_have_run() {
    let result = call_once("127.0.60.1:14000", Second::SessionExpired).await;
    match result {
        Err(e) => assert!(
            e.outcome_unknown(),
            "the call was sent twice and the first copy may have run, but the client says: {e:?}"
        ),
        Ok(_) => panic!("unexpected success"),
    }
}

/// Invariant 5: the resent copy of call 1 is refused `TooManyInFlight`,
/// which the table does not record; the first copy may still be in the log
/// and run later (see the replica test
/// `a_call_refused_too_many_in_flight_runs_later_from_its_other_copy`). The
/// client reports `Call(TooManyInFlight)` ("did not run") instead of
/// retrying the same seq or saying the outcome is unknown.
#[tokio::test]
async fn a_resent_call_refused_too_many_in_flight_is_not_reported_as_not_run() {
    let result = call_once("127.0.60.2:14000", Second::TooManyInFlightThenOk).await;
    match result {
        Ok(_) => {}
        Err(e) => assert!(
            e.outcome_unknown(),
            "an earlier copy may still run, but the client says: {e:?}"
        ),
    }
}
