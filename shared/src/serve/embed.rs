//! `GET /v1/embed.js` and `GET /v1/embed/<hash>.js`: the shoppers' pages' script
//! (`<promo-price>`, `<promo-drop>`), one file (`shared/assets/embed.js`) compiled into every
//! runtime, so the Worker and `promoctl dev` serve the same bytes.
//!
//! The versioned URL is immutable (cached for a year); `/v1/embed.js` is what shops paste and
//! is cached briefly (5 minutes, then revalidated by its `ETag`), naming the versioned URL in
//! `Link` so a browser may preload it.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::http::{ApiError, Request, Response};

/// The script, byte for byte.
pub const EMBED_JS: &str = include_str!("../../assets/embed.js");

/// How long a browser or the edge keeps `/v1/embed.js` before revalidating.
pub const EMBED_MAX_AGE_SECONDS: u32 = 300;

/// The first 16 hex digits of the script's SHA-256: its version.
pub fn content_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hex::encode(&Sha256::digest(EMBED_JS.as_bytes())[..8]))
}

/// The versioned, immutable path of this build's script.
pub fn versioned_path() -> String {
    format!("/v1/embed/{}.js", content_hash())
}

/// `GET /v1/embed.js`.
pub fn latest(req: &Request) -> Response {
    let control = format!("public, max-age={EMBED_MAX_AGE_SECONDS}, stale-while-revalidate=86400");
    let mut resp = script(req, control);
    resp.headers.push(("link".into(), format!("<{}>; rel=preload; as=script; crossorigin", versioned_path())));
    resp
}

/// `GET /v1/embed/{file}`: this build's `<hash>.js`, immutable; any other name is 404 (a
/// page pinned to an older build gets a clear miss, never other bytes under its name).
pub fn versioned(req: &Request, file: &str) -> Result<Response, ApiError> {
    if file.strip_suffix(".js") != Some(content_hash()) {
        return Err(ApiError::NotFound(format!("no embed script `{file}`: the current one is {}", versioned_path())));
    }
    Ok(script(req, "public, max-age=31536000, immutable".into()))
}

fn script(req: &Request, control: String) -> Response {
    let etag = format!("\"{}\"", content_hash());
    let matches = req.header_values("if-none-match").flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str())
    });
    let mut resp = if matches {
        Response { status: 304, headers: vec![], body: vec![] }
    } else {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/javascript; charset=utf-8".into())],
            body: EMBED_JS.as_bytes().to_vec(),
        }
    };
    resp.headers.push(("etag".into(), etag));
    resp.headers.push(("cache-control".into(), control));
    resp.headers.push(("x-content-type-options".into(), "nosniff".into()));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_served_with_its_version_and_caching() {
        let r = latest(&Request::new("GET", "/v1/embed.js"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, EMBED_JS.as_bytes());
        assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("public, max-age=300, stale-while-revalidate=86400"));
        let etag = r.header("etag").unwrap().to_string();
        assert_eq!(etag, format!("\"{}\"", content_hash()));
        assert!(r.header("link").unwrap().contains(&versioned_path()));
        let again = latest(&Request::new("GET", "/v1/embed.js").header("if-none-match", &etag));
        assert_eq!((again.status, again.body.len()), (304, 0));
        let file = format!("{}.js", content_hash());
        let pinned = versioned(&Request::new("GET", "/x"), &file).unwrap();
        assert_eq!(pinned.header("cache-control"), Some("public, max-age=31536000, immutable"));
        assert_eq!(pinned.body, EMBED_JS.as_bytes());
        assert_eq!(versioned(&Request::new("GET", "/x"), "0123456789abcdef.js").unwrap_err().status(), 404);
    }

    #[test]
    fn the_script_has_no_eval_and_no_storage() {
        for banned in ["eval(", "new Function", "localStorage", "sessionStorage", "document.cookie", "import("] {
            assert!(!EMBED_JS.contains(banned), "embed.js uses {banned}");
        }
    }
}
