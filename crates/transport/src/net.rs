//! The TCP types every connection uses: tokio's, or — with the `sim`
//! feature, inside a `turmoil` simulation — turmoil's simulated ones. The
//! choice is made per call at run time, so code outside a simulation always
//! gets real sockets.

#[cfg(not(feature = "sim"))]
pub use tokio::net::{TcpListener, TcpStream};

#[cfg(feature = "sim")]
pub use switched::{TcpListener, TcpStream};

#[cfg(feature = "sim")]
mod switched {
    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// A real or a simulated TCP stream.
    #[derive(Debug)]
    pub enum TcpStream {
        /// A real socket.
        Os(tokio::net::TcpStream),
        /// A stream of the simulated network.
        Sim(turmoil::net::TcpStream),
    }

    impl TcpStream {
        /// Connects to `addr` (`host:port`).
        pub async fn connect(addr: &str) -> io::Result<TcpStream> {
            if turmoil::in_simulation() {
                Ok(TcpStream::Sim(
                    turmoil::net::TcpStream::connect(addr).await?,
                ))
            } else {
                Ok(TcpStream::Os(tokio::net::TcpStream::connect(addr).await?))
            }
        }

        /// Sets `TCP_NODELAY` (nothing to set on a simulated stream).
        pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
            match self {
                TcpStream::Os(s) => s.set_nodelay(on),
                TcpStream::Sim(s) => s.set_nodelay(on),
            }
        }

        /// The remote address.
        pub fn peer_addr(&self) -> io::Result<SocketAddr> {
            match self {
                TcpStream::Os(s) => s.peer_addr(),
                TcpStream::Sim(s) => s.peer_addr(),
            }
        }
    }

    impl AsyncRead for TcpStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.get_mut() {
                TcpStream::Os(s) => Pin::new(s).poll_read(cx, buf),
                TcpStream::Sim(s) => Pin::new(s).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for TcpStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            match self.get_mut() {
                TcpStream::Os(s) => Pin::new(s).poll_write(cx, buf),
                TcpStream::Sim(s) => Pin::new(s).poll_write(cx, buf),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                TcpStream::Os(s) => Pin::new(s).poll_flush(cx),
                TcpStream::Sim(s) => Pin::new(s).poll_flush(cx),
            }
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.get_mut() {
                TcpStream::Os(s) => Pin::new(s).poll_shutdown(cx),
                TcpStream::Sim(s) => Pin::new(s).poll_shutdown(cx),
            }
        }
    }

    /// A real or a simulated listener.
    pub enum TcpListener {
        /// A real socket.
        Os(tokio::net::TcpListener),
        /// A listener of the simulated network.
        Sim(turmoil::net::TcpListener),
    }

    impl TcpListener {
        /// Listens on `addr` (`host:port`); a simulated host listens on
        /// every address of its own at that port.
        pub async fn bind(addr: &str) -> io::Result<TcpListener> {
            if turmoil::in_simulation() {
                let port = addr
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, format!("no port in {addr}"))
                    })?;
                let any = SocketAddr::from(([0, 0, 0, 0], port));
                Ok(TcpListener::Sim(
                    turmoil::net::TcpListener::bind(any).await?,
                ))
            } else {
                Ok(TcpListener::Os(tokio::net::TcpListener::bind(addr).await?))
            }
        }

        /// Accepts the next connection.
        pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
            match self {
                TcpListener::Os(l) => l.accept().await.map(|(s, a)| (TcpStream::Os(s), a)),
                TcpListener::Sim(l) => l.accept().await.map(|(s, a)| (TcpStream::Sim(s), a)),
            }
        }

        /// The address it listens on.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            match self {
                TcpListener::Os(l) => l.local_addr(),
                TcpListener::Sim(l) => l.local_addr(),
            }
        }
    }
}
