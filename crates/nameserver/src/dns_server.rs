//! The DNS listener: hickory-server on one UDP socket and one TCP listener,
//! answering for one [`LiveZone`] through a `Catalog` (which gives `aa` on
//! every answer from the zone, NXDOMAIN for names inside it that do not
//! exist, and REFUSED for names outside it).
//!
//! hickory parses every packet; one it cannot parse is answered FORMERR or
//! dropped, and the server keeps serving.

use crate::errors::NameserverError;
use crate::live_zone::LiveZone;
use hickory_server::Server;
use hickory_server::zone_handler::{Catalog, ZoneHandler};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Time a TCP client has to send its query.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 64;

/// A running DNS server; dropping it stops the server.
pub struct DnsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` and answers for `zone` until dropped.
    pub async fn start(
        addr: SocketAddr,
        zone: Arc<LiveZone>,
    ) -> Result<DnsServer, NameserverError> {
        let (udp, tcp, addr) = bind_udp_and_tcp(addr).await?;
        let mut catalog = Catalog::new();
        let handler: Arc<dyn ZoneHandler> = zone.handler();
        catalog.upsert(zone.origin(), vec![handler]);
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
        info!(%addr, zone = %zone.spec().domain, "answering DNS (UDP and TCP)");
        let task = tokio::spawn(async move {
            if let Err(e) = server.block_until_done().await {
                warn!("the DNS server stopped: {e}");
            }
        });
        Ok(DnsServer { addr, task })
    }

    /// The address it answers on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Attempts at a port both UDP and TCP can take, when the system picks it.
const FREE_PORT_ATTEMPTS: usize = 16;

/// Binds UDP and TCP on `addr`. With port 0 the system picks UDP's port and
/// TCP takes the same; that port may be in use for TCP already (say, by an
/// outgoing connection's ephemeral port), so then both are tried again on
/// another one.
async fn bind_udp_and_tcp(
    addr: SocketAddr,
) -> Result<(UdpSocket, TcpListener, SocketAddr), NameserverError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| bind_error(addr, e))?;
        let picked = udp.local_addr().map_err(|e| bind_error(addr, e))?;
        match TcpListener::bind(picked).await {
            Ok(tcp) => return Ok((udp, tcp, picked)),
            Err(e)
                if addr.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempt < FREE_PORT_ATTEMPTS => {}
            Err(e) => return Err(bind_error(picked, e)),
        }
    }
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> NameserverError {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        NameserverError::Privileged {
            addr: addr.to_string(),
        }
    } else {
        NameserverError::Bind {
            addr: addr.to_string(),
            source: e,
        }
    }
}
