//! Runtime-neutral HTTP: the request and response every runtime converts its own types to
//! and from (so every handler is plain, host-testable code), the one mapping of errors to a
//! status and the body `{"error": {"code", "message"}}` ([`ApiError`]), the one route
//! table ([`Route`]) and CORS for the shop's pages ([`Cors`]).

mod cors;
mod error;
mod routes;

use serde::Serialize;

pub use cors::Cors;
pub use error::{ApiError, INTERNAL_MESSAGE, UNAVAILABLE_MESSAGE, stamp_request_id};
pub use routes::{Route, ServedBy, Traits};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    /// Header names in lower case; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Who is calling, as the runtime knows it: `CF-Connecting-IP` at the edge, the peer's
    /// address in the local runtime; `None` when unknown. Keys per-client rate limits.
    pub client: Option<String>,
}

/// All values of a header in `headers` (name compared case-insensitively).
pub fn header_values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Whether a header value is valid as the platform takes it: visible ASCII, spaces and tabs
/// (RFC 9110 `field-value` without obsolete text). Anything else is refused with 400
/// `invalid_header` by every runtime, never dropped: a dropped `Idempotency-Key` would make a
/// retry claim twice, a dropped second signature header would bypass the one-header rule.
pub fn valid_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
}

/// The request's id: its `x-request-id` when it is a plausible id (1 to 128 letters, digits,
/// `-`, `_`, `.`, `:`), which each runtime's entry sets when the caller did not (the Worker
/// from Cloudflare's `cf-ray`, the local runtime a new one). It is echoed in the answer and
/// handed on with an accepted payment event, so the edge's and the Lambdas' logs name the
/// same request.
pub fn request_id(req: &Request) -> Option<&str> {
    request_id_in(&req.headers)
}

/// [`request_id`] of a request's headers (names in lower case), before the request is whole.
pub fn request_id_in(headers: &[(String, String)]) -> Option<&str> {
    header_values(headers, "x-request-id").next().filter(|id| plausible_request_id(id))
}

/// Whether `id` is used as a request id: 1 to 128 letters, digits, `-`, `_`, `.`, `:`.
pub fn plausible_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The 400 every runtime answers for a header value that is not valid.
pub fn invalid_header(name: &str) -> ApiError {
    ApiError::InvalidHeader(format!("header `{name}` has a value that is not visible ASCII (spaces and tabs allowed)"))
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: String::new(),
            headers: vec![],
            body: vec![],
            client: None,
        }
    }

    /// The request a runtime received, checked the same way in every runtime: a body the
    /// runtime could not read is a 503 (the sender should retry: it is our failure, not its),
    /// and a header value that is not valid is a 400. `body` carries the runtime's read error.
    pub fn received<E: std::fmt::Display>(
        method: &str,
        path: &str,
        headers: Vec<(String, String)>,
        body: Result<Vec<u8>, E>,
        client: Option<String>,
    ) -> Result<Request, ApiError> {
        let body = body.map_err(|e| ApiError::Unavailable(format!("the request body could not be read: {e}")))?;
        let req =
            Request { method: method.to_string(), path: path.to_string(), query: String::new(), headers, body, client };
        req.check_headers()?;
        Ok(req)
    }

    /// Refuses a request with a header value that is not valid ([`valid_header_value`]).
    pub fn check_headers(&self) -> Result<(), ApiError> {
        match self.headers.iter().find(|(_, v)| !valid_header_value(v)) {
            Some((name, _)) => Err(invalid_header(name)),
            None => Ok(()),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The request with this query string (without `?`).
    pub fn with_query(mut self, query: &str) -> Request {
        self.query = query.trim_start_matches('?').to_string();
        self
    }

    /// A query parameter's raw value (the first; not percent-decoded: the platform's own
    /// parameters are URL-safe).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if kv == name => Some(""),
            _ => None,
        })
    }

    /// The path with the query string, as sent.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, self.query) }
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// All values of a header (name compared case-insensitively).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        header_values(&self.headers, name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Percent-encodes a URL path segment (RFC 3986 unreserved characters stay as they are).
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_could_not_be_read_is_a_retryable_503() {
        let failed = Request::received("POST", "/v1/webhooks/standard", vec![], Err("stream reset"), None);
        let e = failed.unwrap_err();
        assert_eq!((e.status(), e.code()), (503, "unavailable"));
        assert_eq!(e.into_response().header("retry-after"), Some("5"));
        let ok = Request::received::<&str>("POST", "/", vec![], Ok(b"{}".to_vec()), Some("10.0.0.1".into())).unwrap();
        assert_eq!((ok.body.as_slice(), ok.client.as_deref()), (&b"{}"[..], Some("10.0.0.1")));
    }

    #[test]
    fn header_values_outside_visible_ascii_are_refused() {
        for bad in ["caf\u{e9}", "a\u{80}", "key-\u{20ac}", "x\u{0}y", "line\nbreak"] {
            let headers = vec![("idempotency-key".to_string(), bad.to_string())];
            let e = Request::received::<&str>("POST", "/", headers, Ok(vec![]), None).unwrap_err();
            assert_eq!((e.status(), e.code()), (400, "invalid_header"), "{bad:?}");
        }
        let fine = vec![("x".to_string(), "a b\tc~!".to_string())];
        assert!(Request::received::<&str>("GET", "/", fine, Ok(vec![]), None).is_ok());
    }
}
