//! The HTTP(S) server: our own accept loop around warp's service, because
//! warp 0.4 has no TLS and we want request ids, peer addresses and graceful
//! shutdown in one place.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::ClientAddr;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Builds the rustls config from PEM files.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            message: "no certificate found".into(),
        });
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsError::Pem {
            path: key.to_owned(),
            message: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Pem {
            path: key.to_owned(),
            message: "no private key found".into(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes a self-signed certificate for `localhost` and the machine's
/// hostname into `<data_dir>/tls/` unless one is already there.
pub fn ensure_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("self-signed.crt");
    let key = dir.join("self-signed.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    let generated = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Setup(e.to_string()))?;
    std::fs::write(&cert, generated.cert.pem()).map_err(|source| TlsError::Read {
        path: cert.clone(),
        source,
    })?;
    crate::auth::bootstrap::write_secret_file(&key, &generated.signing_key.serialize_pem()).map_err(|source| {
        TlsError::Read {
            path: key.clone(),
            source,
        }
    })?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

/// The TLS config the settings ask for, if any.
pub fn tls_from_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    match (&config.tls.cert, &config.tls.key) {
        (Some(c), Some(k)) => load_tls(c, k).map(Some),
        _ if config.tls.self_signed => {
            let (c, k) = ensure_self_signed(&config.data_dir)?;
            load_tls(&c, &k).map(Some)
        }
        _ => Ok(None),
    }
}

/// Serves `routes` on `listener` until `shutdown`, then lets in-flight
/// requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = request_service(routes.clone(), peer);
        match &acceptor {
            None => {
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls_stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(tls_stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "connection ended with error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}

/// Wraps the warp service: peer address, a request id (also returned as
/// `X-Request-Id`), a tracing span and an access-log line per request.
#[derive(Clone)]
struct RequestService<S> {
    inner: S,
    peer: SocketAddr,
}

fn request_service(
    routes: BoxedFilter<(Response,)>,
    peer: SocketAddr,
) -> RequestService<
    impl Service<hyper::Request<Incoming>, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static,
> {
    RequestService {
        inner: warp::service(routes),
        peer,
    }
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for RequestService<S>
where
    S: Service<hyper::Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        let mut svc = self.inner.clone();
        req.extensions_mut().insert(ClientAddr(self.peer));
        let id = uuid::Uuid::new_v4();
        let span = tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path());
        let started = Instant::now();
        Box::pin(async move {
            let result = svc.call(req).instrument(span.clone()).await;
            let mut response = match result {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if let Ok(v) = warp::http::HeaderValue::from_str(&id.to_string()) {
                response.headers_mut().insert("x-request-id", v);
            }
            let _enter = span.enter();
            tracing::info!(
                status = response.status().as_u16(),
                ms = started.elapsed().as_millis() as u64,
                "request"
            );
            Ok(response)
        })
    }
}
