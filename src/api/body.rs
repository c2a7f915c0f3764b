//! Request-body and query helpers shared by every resource.

use serde::de::DeserializeOwned;
use serde_json::json;
use warp::{Filter, Rejection};

use super::error::ApiError;

/// Reads the body (up to `limit` bytes) and deserializes it, turning every
/// failure into upstream's 400 `invalid-data` with the offending field.
/// Content-Type is not required, as upstream parses with `force=True`.
pub fn json<T: DeserializeOwned + Send>(limit: u64) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    limited_bytes(limit)
        .and_then(|bytes: bytes::Bytes| async move { parse_json::<T>(&bytes).map_err(warp::reject::custom) })
}

/// Like [`json`] but an empty body is `None` (POST /token has an optional body).
pub fn optional_json<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (Option<T>,), Error = Rejection> + Clone {
    limited_bytes(limit).and_then(|bytes: bytes::Bytes| async move {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(None);
        }
        parse_json::<T>(&bytes).map(Some).map_err(warp::reject::custom)
    })
}

/// The whole body, at most `limit` bytes, with or without Content-Length
/// (warp's own limit filter refuses chunked bodies and empty POSTs).
pub fn limited_bytes(limit: u64) -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, stream| async move {
            if let Some(n) = declared.filter(|n| *n > limit) {
                // Read and drop a body up to 16 times too big: a client still writing it
                // when we answer gets a broken pipe instead of the 413. Bigger: answer at once.
                if n <= limit.saturating_mul(16) {
                    discard(Box::pin(stream)).await;
                }
                return Err(warp::reject::custom(ApiError::PayloadTooLarge));
            }
            collect(Box::pin(stream), limit).await.map_err(warp::reject::custom)
        })
}

async fn discard<S, B>(mut stream: std::pin::Pin<Box<S>>)
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + ?Sized,
{
    use futures_util::StreamExt;
    while let Some(Ok(_)) = stream.next().await {}
}

async fn collect<S, B>(mut stream: std::pin::Pin<Box<S>>, limit: u64) -> Result<bytes::Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + ?Sized,
    B: warp::Buf,
{
    use futures_util::StreamExt;
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| ApiError::InvalidData {
            details: json!({ "_schema": ["Could not read the body"] }),
        })?;
        if buf.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            buf.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            // Trailing bytes after the JSON value are a syntax error too.
            de.end().map_err(|_| ApiError::InvalidData {
                details: json!({ "_schema": ["Invalid JSON body"] }),
            })?;
            Ok(v)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." || path == "?" || path.is_empty() {
                "_schema".to_string()
            } else {
                path
            };
            let message = match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    "Invalid JSON body".to_string()
                }
                _ => strip_position(&inner.to_string()),
            };
            Err(ApiError::InvalidData {
                details: json!({ field: [message] }),
            })
        }
    }
}

/// Like [`parse_json`], for bodies that must be a JSON object: anything else (an array, which
/// serde would read as the struct's fields in order, a string...) is `_schema` "Invalid input
/// type.", as marshmallow says.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => parse_json(bytes),
        _ => Err(ApiError::InvalidData {
            details: json!({ "_schema": ["Invalid input type."] }),
        }),
    }
}

/// serde_json appends " at line 1 column 9"; clients want the reason only.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The raw query string, or "" when there is none (warp rejects otherwise).
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// Parses a query string into `T`, mapping errors to `invalid-data`.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str::<T>(query).map_err(|e| ApiError::InvalidData {
        details: json!({ "query": [e.to_string()] }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: Option<u32>,
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse_json::<Body>(br#"{"name": 3}"#).expect_err("type");
        assert!(err.body()["details"]["name"].is_array(), "{:?}", err.body());
        let err = parse_json::<Body>(br#"{"name": "a", "bogus": 1}"#).expect_err("unknown");
        let body = err.body();
        assert!(body["details"].to_string().contains("bogus"), "{body}");
        let err = parse_json::<Body>(b"{not json").expect_err("syntax");
        assert_eq!(err.body()["error_id"], "invalid-data");
        let err = parse_json::<Body>(br#"{"name": "a"} trailing"#).expect_err("trailing");
        assert_eq!(err.status(), 400);
    }
}
