//! What the records are made from: the replicas of the latest view, who
//! leads, and who answers DNS.

/// One replica of the view.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ViewReplica {
    /// Where it serves clients (`ip:port`).
    pub addr: String,
    /// Whether it leads (as far as the name server knows).
    pub leader: bool,
    /// Where it answers DNS for the zone (`ip:port`), if it does (`-n`).
    pub dns: Option<String>,
}

/// The view a name server answers from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveView {
    /// The view's epoch (grows with every view change).
    pub epoch: u64,
    /// Its replicas.
    pub replicas: Vec<ViewReplica>,
    /// Name servers outside the view (a `concoord nameserver`), by the
    /// address they answer on (`ip:port`).
    pub other_name_servers: Vec<String>,
}

impl LiveView {
    /// A view of replicas by address, none leading, none answering DNS.
    pub fn of_addresses<S: AsRef<str>>(epoch: u64, addrs: &[S]) -> LiveView {
        LiveView {
            epoch,
            replicas: addrs
                .iter()
                .map(|a| ViewReplica {
                    addr: a.as_ref().to_string(),
                    leader: false,
                    dns: None,
                })
                .collect(),
            other_name_servers: Vec::new(),
        }
    }

    /// The addresses of the replicas.
    pub fn addresses(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.addr.clone()).collect()
    }

    /// The address of the leader, if known.
    pub fn leader(&self) -> Option<&str> {
        self.replicas
            .iter()
            .find(|r| r.leader)
            .map(|r| r.addr.as_str())
    }
}
