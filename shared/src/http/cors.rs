//! CORS for the shop's pages, configured in one place (`PROMO_CORS_ORIGINS`, exact origins):
//! a page on an allowed origin may call the shopper-facing routes (price reads, quotes,
//! claims, wallets, the client callback) with its bearer token; provider webhooks and
//! `/healthz` are server-to-server and get no CORS headers. Tokens travel in
//! `Authorization`, never in cookies, so no credentials mode is needed.

use super::{ApiError, Request, Response, Route};

/// The methods and request headers a page may use.
const ALLOW_METHODS: &str = "GET, HEAD, POST, DELETE";
const ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key";
/// Answer headers a page may read besides the simple ones.
const EXPOSE_HEADERS: &str = "etag, age, x-cache, idempotent-replayed, retry-after, x-request-id";
/// How long a browser may reuse a preflight answer.
const MAX_AGE_SECONDS: u32 = 600;

/// The shop's allowed origins (`https://shop.example`), compared exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cors {
    pub origins: Vec<String>,
}

impl Cors {
    /// Space-separated origins; each must be `scheme://host[:port]` without a path.
    pub fn parse(value: &str) -> Result<Cors, String> {
        let origins: Vec<String> = value.split_whitespace().map(|o| o.trim_end_matches('/').to_string()).collect();
        for o in &origins {
            let valid = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.split("://").nth(1).unwrap_or_default().contains('/')
                && o != "https://"
                && o != "http://";
            if !valid {
                return Err(format!("`{o}` is not an origin like https://shop.example"));
            }
        }
        Ok(Cors { origins })
    }

    fn allowed<'r>(&self, req: &'r Request) -> Option<&'r str> {
        req.header_values("origin").next().filter(|o| self.origins.iter().any(|a| a == o))
    }

    /// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`), or `None`
    /// for any other request. A preflight for a route that has no CORS, from an origin not
    /// allowed, or for a method the route does not take is refused (403), so a browser never
    /// sends the request itself.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        if req.method != "OPTIONS" {
            return None;
        }
        let Some(method) = req.header_values("access-control-request-method").next() else {
            return Some(ApiError::MethodNotAllowed { method: "OPTIONS".into(), allow: "GET, POST" }.into_response());
        };
        let route = match Route::of(method, &req.path) {
            Ok(route) => route,
            Err(e) => return Some(e.into_response()),
        };
        let Some(origin) = self.allowed(req).filter(|_| for_pages(&route)) else {
            return Some(ApiError::Forbidden(format!("origin not allowed to call {}", req.path)).into_response());
        };
        let mut resp = Response { status: 204, headers: vec![], body: vec![] };
        resp.headers.extend([
            ("access-control-allow-origin".to_string(), origin.to_string()),
            ("access-control-allow-methods".to_string(), ALLOW_METHODS.to_string()),
            ("access-control-allow-headers".to_string(), ALLOW_HEADERS.to_string()),
            ("access-control-max-age".to_string(), MAX_AGE_SECONDS.to_string()),
            ("vary".to_string(), "Origin".to_string()),
        ]);
        Some(resp)
    }

    /// Adds the CORS headers to `resp` for a request from an allowed origin to a route pages
    /// may call; and `Vary: Origin` to every such route's answer, so a shared cache never
    /// serves one origin's answer to another.
    pub fn decorate(&self, req: &Request, route: Option<&Route<'_>>, resp: &mut Response) {
        if !route.is_some_and(for_pages) {
            return;
        }
        if !resp.headers.iter().any(|(k, v)| k == "vary" && v.to_ascii_lowercase().contains("origin")) {
            resp.headers.push(("vary".to_string(), "Origin".to_string()));
        }
        if let Some(origin) = self.allowed(req) {
            resp.headers.push(("access-control-allow-origin".to_string(), origin.to_string()));
            resp.headers.push(("access-control-expose-headers".to_string(), EXPOSE_HEADERS.to_string()));
        }
    }
}

/// The routes a shop's page calls (the route table's `pages`).
fn for_pages(route: &Route<'_>) -> bool {
    route.traits().pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors::parse("https://shop.example https://m.shop.example/").unwrap()
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        headers.iter().fold(Request::new(method, path), |r, (k, v)| r.header(k, v))
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn origins_are_exact_and_validated() {
        assert_eq!(cors().origins, ["https://shop.example", "https://m.shop.example"]);
        assert!(Cors::parse("shop.example").is_err());
        assert!(Cors::parse("https://shop.example/path").is_err());
        assert_eq!(Cors::parse("").unwrap(), Cors::default());
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_for_a_page_route_is_answered() {
        let ok = req(
            "OPTIONS",
            "/v1/campaigns/bf/claims",
            &[
                ("origin", "https://shop.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization"),
            ],
        );
        let r = cors().preflight(&ok).unwrap();
        assert_eq!(r.status, 204);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("https://shop.example"));
        assert!(header(&r, "access-control-allow-headers").unwrap().contains("idempotency-key"));
        // Another origin, a webhook, a method the route does not take, no such route.
        let evil = req(
            "OPTIONS",
            "/v1/campaigns/bf/claims",
            &[("origin", "https://evil.example"), ("access-control-request-method", "POST")],
        );
        assert_eq!(cors().preflight(&evil).unwrap().status, 403);
        let hook = req(
            "OPTIONS",
            "/v1/webhooks/stripe",
            &[("origin", "https://shop.example"), ("access-control-request-method", "POST")],
        );
        assert_eq!(cors().preflight(&hook).unwrap().status, 403);
        let wrong = req(
            "OPTIONS",
            "/v1/campaigns/bf/claims",
            &[("origin", "https://shop.example"), ("access-control-request-method", "DELETE")],
        );
        assert_eq!(cors().preflight(&wrong).unwrap().status, 405);
        let cancel = req(
            "OPTIONS",
            "/v1/events/e/reservations/r-1",
            &[("origin", "https://shop.example"), ("access-control-request-method", "DELETE")],
        );
        let ok = cors().preflight(&cancel).unwrap();
        assert_eq!(ok.status, 204, "a shop page may cancel a reservation");
        assert!(ok.header("access-control-allow-methods").unwrap().contains("DELETE"));
        let none = req(
            "OPTIONS",
            "/v1/nothing",
            &[("origin", "https://shop.example"), ("access-control-request-method", "GET")],
        );
        assert_eq!(cors().preflight(&none).unwrap().status, 404);
        assert!(cors().preflight(&req("GET", "/healthz", &[])).is_none());
    }

    #[test]
    fn answers_to_allowed_pages_carry_the_origin_and_always_vary() {
        let route = Route::MaxBenefitPrice { product: "p-1" };
        let mut r = Response { status: 200, headers: vec![], body: vec![] };
        cors().decorate(
            &req("GET", "/v1/products/p-1/max-benefit-price", &[("origin", "https://m.shop.example")]),
            Some(&route),
            &mut r,
        );
        assert_eq!(header(&r, "access-control-allow-origin"), Some("https://m.shop.example"));
        assert_eq!(header(&r, "vary"), Some("Origin"));
        let mut other = Response { status: 200, headers: vec![], body: vec![] };
        cors().decorate(
            &req("GET", "/v1/products/p-1/max-benefit-price", &[("origin", "https://evil.example")]),
            Some(&route),
            &mut other,
        );
        assert_eq!(header(&other, "access-control-allow-origin"), None);
        assert_eq!(header(&other, "vary"), Some("Origin"), "cached answers vary by origin");
        let mut hook = Response { status: 200, headers: vec![], body: vec![] };
        cors().decorate(
            &req("POST", "/v1/webhooks/stripe", &[("origin", "https://shop.example")]),
            Some(&Route::Webhook { provider: "stripe" }),
            &mut hook,
        );
        assert!(hook.headers.is_empty());
    }
}
