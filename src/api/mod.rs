//! The HTTP side: one warp route tree for every API, served on one port.

pub mod body;
pub mod config;
pub mod error;
pub mod list;
pub mod openapi;
pub mod server;
pub mod status;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use warp::reply::Response;
use warp::Filter;

use self::error::ApiError;

/// The peer address of a connection, set by our server on every request.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The client's IP: the peer, or the first `X-Forwarded-For` hop when the
/// peer is a local reverse proxy (nginx in front of accentd).
pub fn client_addr() -> impl Filter<Extract = (Option<IpAddr>,), Error = warp::Rejection> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .map(|peer: Option<ClientAddr>, forwarded: Option<String>| {
            let peer = peer.map(|p| p.0.ip());
            match (peer, forwarded) {
                (Some(ip), Some(f)) if ip.is_loopback() => f
                    .split(',')
                    .next()
                    .and_then(|h| h.trim().parse::<IpAddr>().ok())
                    .or(Some(ip)),
                (peer, _) => peer,
            }
        })
}

/// Runs a handler and turns its error into the JSON error response: once a
/// route has matched, its answer is final (no fall-through to other routes).
pub async fn respond<F>(fut: F) -> Response
where
    F: Future<Output = Result<Response, ApiError>> + Send,
{
    match fut.await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}
