//! Every method of every ready-made object, through its proxy, against a
//! 3-replica cluster served by `concoord replica -o NAME`, error paths included.

use concoord_client::MethodError;
use concoord_client::proxies::{
    Bank, BlockingStack, Counter, JobManager, KeyValue, Log, Membership, NameserverCoord, Queue,
    Stack,
};
use concoord_integration_tests::{Cluster, ReplicaSpec, runtime};
use concoord_objects::{BankError, JobError, KvError, NameserverError, QueueError, StackError};
use std::collections::BTreeMap;

fn cluster(name: &'static str, ip: &str) -> (Cluster, String) {
    let mut c = Cluster::start_spec(ReplicaSpec::builtin(name), name, ip, 3);
    let boot = c.bootstrap_live();
    (c, boot)
}

fn returned<T: std::fmt::Debug, E: std::fmt::Debug>(r: Result<T, MethodError<E>>) -> E {
    match r {
        Err(MethodError::Returned(e)) => e,
        other => panic!("expected the method's error, got {other:?}"),
    }
}

#[test]
fn counter_increments_decrements_reads_and_reinitialises() {
    let (_c, boot) = cluster("concoord.object.counter.Counter", "127.0.10.1");
    runtime().block_on(async {
        let c = Counter::connect(&boot).await.expect("connect");
        c.increment().await.expect("increment");
        c.increment().await.expect("increment");
        c.decrement().await.expect("decrement");
        assert_eq!(c.getvalue().await.expect("read"), 1);
        c.concoord_init(Some(40)).await.expect("init");
        assert_eq!(c.getvalue().await.expect("read"), 40);
    });
}

#[test]
fn bank_refuses_overdrafts_and_unknown_accounts() {
    let (_c, boot) = cluster("bank", "127.0.10.2");
    runtime().block_on(async {
        let b = Bank::connect(&boot).await.expect("connect");
        b.open("alice".into()).await.expect("open");
        assert_eq!(
            returned(b.open("alice".into()).await),
            BankError::AccountExists("alice".into())
        );
        assert_eq!(b.deposit("alice".into(), 100).await.expect("deposit"), 100);
        assert_eq!(b.debit("alice".into(), 30).await.expect("debit"), 70);
        assert_eq!(
            returned(b.debit("alice".into(), 71).await),
            BankError::InsufficientFunds {
                account: "alice".into(),
                balance: 70,
                requested: 71
            }
        );
        // `concoord call` shows the error as JSON with its field names.
        let out = std::process::Command::new(concoord_integration_tests::binary("concoord"))
            .args(["call", "-b", &boot, "debit", "alice", "71"])
            .output()
            .expect("run concoord call");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(
                r#"{"InsufficientFunds":{"account":"alice","balance":70,"requested":71}}"#
            ),
            "field names kept: {stderr}"
        );
        assert_eq!(
            returned(b.deposit("alice".into(), -5).await),
            BankError::InvalidAmount(-5)
        );
        assert_eq!(b.balance("alice".into()).await.expect("balance"), 70);
        assert_eq!(
            returned(b.balance("bob".into()).await),
            BankError::NoSuchAccount("bob".into())
        );
        assert_eq!(
            returned(b.debit("bob".into(), 1).await),
            BankError::NoSuchAccount("bob".into())
        );
        assert_eq!(b.close("alice".into()).await.expect("close"), 70);
        assert_eq!(
            returned(b.close("alice".into()).await),
            BankError::NoSuchAccount("alice".into())
        );
    });
}

#[test]
fn log_writes_appends_and_reads() {
    let (_c, boot) = cluster("log", "127.0.10.3");
    runtime().block_on(async {
        let l = Log::connect(&boot).await.expect("connect");
        assert!(l.is_empty().await.expect("read"));
        assert_eq!(l.append("a".into()).await.expect("append"), 0);
        assert_eq!(l.append("b".into()).await.expect("append"), 1);
        assert_eq!(l.read().await.expect("read"), vec!["a", "b"]);
        l.write("fresh".into()).await.expect("write");
        assert_eq!(l.read().await.expect("read"), vec!["fresh"]);
        assert_eq!(l.len().await.expect("len"), 1);
    });
}

#[test]
fn membership_adds_removes_and_lists() {
    let (_c, boot) = cluster("membership", "127.0.10.4");
    runtime().block_on(async {
        let m = Membership::connect(&boot).await.expect("connect");
        assert!(m.add("n2".into()).await.expect("add"));
        assert!(m.add("n1".into()).await.expect("add"));
        assert!(!m.add("n1".into()).await.expect("add twice"));
        assert!(m.contains("n2".into()).await.expect("contains"));
        assert_eq!(m.members().await.expect("members"), vec!["n1", "n2"]);
        assert!(m.remove("n2".into()).await.expect("remove"));
        assert!(!m.remove("n2".into()).await.expect("remove twice"));
        assert_eq!(m.members().await.expect("members"), vec!["n1"]);
    });
}

#[test]
fn stack_pushes_pops_and_refuses_to_pop_when_empty() {
    let (_c, boot) = cluster("stack", "127.0.10.5");
    runtime().block_on(async {
        let s = Stack::connect(&boot).await.expect("connect");
        assert_eq!(returned(s.pop().await), StackError::Empty);
        assert_eq!(returned(s.peek().await), StackError::Empty);
        s.push("a".into()).await.expect("push");
        s.append("b".into()).await.expect("append");
        assert_eq!(s.size().await.expect("size"), 2);
        assert_eq!(s.peek().await.expect("peek"), "b");
        assert_eq!(s.contents().await.expect("contents"), vec!["a", "b"]);
        assert_eq!(s.pop().await.expect("pop"), "b");
        assert_eq!(s.pop().await.expect("pop"), "a");
        assert_eq!(returned(s.pop().await), StackError::Empty);
    });
    // The blocking proxy sees the same object.
    let b = std::thread::spawn(move || {
        let s = BlockingStack::connect(&boot).expect("connect");
        s.push("z".into()).expect("push");
        s.size().expect("size")
    })
    .join()
    .expect("thread");
    assert_eq!(b, 1);
}

#[test]
fn queue_is_fifo_and_refuses_when_full_or_empty() {
    let (_c, boot) = cluster("queue", "127.0.10.6");
    runtime().block_on(async {
        let q = Queue::connect(&boot).await.expect("connect");
        assert!(q.empty().await.expect("empty"));
        assert_eq!(returned(q.get().await), QueueError::Empty);
        q.concoord_init(2).await.expect("capacity 2");
        q.put("a".into()).await.expect("put");
        q.put("b".into()).await.expect("put");
        assert!(q.full().await.expect("full"));
        assert_eq!(
            returned(q.put("c".into()).await),
            QueueError::Full { capacity: 2 }
        );
        assert_eq!(q.qsize().await.expect("qsize"), 2);
        assert_eq!(q.get().await.expect("get"), "a");
        assert_eq!(q.get().await.expect("get"), "b");
        assert!(q.empty().await.expect("empty"));
    });
}

#[test]
fn jobmanager_schedules_updates_lists_and_deschedules() {
    let (_c, boot) = cluster("jobmanager", "127.0.10.7");
    runtime().block_on(async {
        let j = JobManager::connect(&boot).await.expect("connect");
        j.schedule("build".into(), "cargo build".into())
            .await
            .expect("schedule");
        assert_eq!(
            returned(j.schedule("build".into(), "again".into()).await),
            JobError::Exists("build".into())
        );
        j.update("build".into(), "running".into())
            .await
            .expect("update");
        assert_eq!(
            j.get_job("build".into()).await.expect("get").state,
            "running"
        );
        assert_eq!(
            returned(j.update("test".into(), "x".into()).await),
            JobError::NoSuchJob("test".into())
        );
        let jobs = j.list_jobs().await.expect("list");
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].spec, "cargo build");
        assert_eq!(
            j.deschedule("build".into()).await.expect("deschedule").id,
            "build"
        );
        assert_eq!(
            returned(j.deschedule("build".into()).await),
            JobError::NoSuchJob("build".into())
        );
        assert!(j.list_jobs().await.expect("list").is_empty());
    });
}

#[test]
fn keyvalue_gets_puts_deletes_swaps_and_lists_by_prefix() {
    let (_c, boot) = cluster("keyvalue", "127.0.10.8");
    runtime().block_on(async {
        let kv = KeyValue::connect(&boot).await.expect("connect");
        assert_eq!(kv.get("a".into()).await.expect("get"), None);
        assert_eq!(kv.put("app/x".into(), "1".into()).await.expect("put"), None);
        assert_eq!(
            kv.put("app/x".into(), "2".into()).await.expect("put"),
            Some("1".into())
        );
        kv.put("app/y".into(), "3".into()).await.expect("put");
        kv.put("other".into(), "4".into()).await.expect("put");
        assert_eq!(
            kv.keys("app/".into()).await.expect("keys"),
            vec!["app/x", "app/y"]
        );
        kv.compare_and_swap("app/x".into(), Some("2".into()), Some("5".into()))
            .await
            .expect("swap");
        assert_eq!(
            returned(
                kv.compare_and_swap("app/x".into(), Some("2".into()), Some("6".into()))
                    .await
            ),
            KvError::Mismatch {
                current: Some("5".into())
            }
        );
        kv.compare_and_swap("new".into(), None, Some("n".into()))
            .await
            .expect("create if absent");
        assert_eq!(
            kv.delete("app/x".into()).await.expect("delete"),
            Some("5".into())
        );
        assert_eq!(kv.get("app/x".into()).await.expect("get"), None);
    });
}

#[test]
fn nameservercoord_tracks_nodes_per_subdomain() {
    let (_c, boot) = cluster("nameservercoord", "127.0.10.9");
    runtime().block_on(async {
        let ns = NameserverCoord::connect(&boot).await.expect("connect");
        assert!(
            ns.add_node("app".into(), "replica".into(), "10.0.0.1:14000".into())
                .await
                .expect("add")
        );
        ns.set_nodes(
            "app".into(),
            "nameserver".into(),
            vec!["10.0.0.9:53".into()],
        )
        .await
        .expect("set");
        let nodes = ns.get_nodes("app".into()).await.expect("get");
        let want: BTreeMap<String, Vec<String>> = [
            ("nameserver".to_string(), vec!["10.0.0.9:53".to_string()]),
            ("replica".to_string(), vec!["10.0.0.1:14000".to_string()]),
        ]
        .into_iter()
        .collect();
        assert_eq!(nodes, want);
        assert_eq!(ns.subdomains().await.expect("list"), vec!["app"]);
        assert!(
            ns.remove_node("app".into(), "replica".into(), "10.0.0.1:14000".into())
                .await
                .expect("remove")
        );
        assert_eq!(
            returned(ns.get_nodes("zzz".into()).await),
            NameserverError::NoSuchSubdomain("zzz".into())
        );
        ns.remove_subdomain("app".into())
            .await
            .expect("remove subdomain");
        assert!(ns.subdomains().await.expect("list").is_empty());
    });
}

#[test]
fn an_unknown_object_name_fails_at_start_with_the_list_of_known_objects() {
    let out = std::process::Command::new(concoord_integration_tests::binary("concoord"))
        .args([
            "replica",
            "-o",
            "concoord.object.nothing.Nothing",
            "-a",
            "127.0.10.10",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown object"), "{err}");
    for known in [
        "concoord.object.bank.Bank",
        "concoord.object.queue.Queue",
        "keyvalue",
    ] {
        assert!(err.contains(known), "{err}");
    }
}
