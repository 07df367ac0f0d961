//! The one route table: every route the platform serves, in every runtime. A runtime entry
//! matches a request here once, then hands the route to the application that serves it
//! (`serve::edge::Edge` for the public routes, `serve::api::Api` for the shoppers').

use super::ApiError;

/// A route, with the ids its path carries (not yet parsed: each handler parses its own, so a
/// malformed id is its 400, not a 404).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /healthz`
    Healthz,
    /// `POST /v1/webhooks/{provider}`
    Webhook { provider: &'a str },
    /// `POST /v1/payments/{payment_id}/complete`: the shop's client reports a payment.
    PaymentComplete { payment_id: &'a str },
    /// `POST /v1/quotes`
    Quote,
    /// `POST /v1/campaigns/{campaign}/claims` (shoppers)
    Claim { campaign: &'a str },
    /// `GET /v1/users/{user}/coupons` (shoppers)
    Wallet { user: &'a str },
    /// `GET /v1/products/{product}/max-benefit-price` (public; personal with a bearer token)
    MaxBenefitPrice { product: &'a str },
    /// `GET /v1/products/{product}/max-benefit-price.html`: the public answer as an HTML
    /// fragment (`pricing::fragment`), cached with the JSON.
    MaxBenefitPriceHtml { product: &'a str },
    /// `GET /v1/embed.js`: the shoppers' pages' script (`serve::embed`), briefly cached.
    EmbedScript,
    /// `GET /v1/embed/{file}`: the script under its content hash (`<hash>.js`), immutable.
    EmbedVersioned { file: &'a str },
    /// `GET|POST /v1/unsubscribe?t=<token>`: a campaign email's one-click unsubscribe (POST)
    /// and the page a link scanner or a shopper's browser sees (GET).
    Unsubscribe,
    /// `GET /v1/events/{event}`: a limited event's status and places (public, cached ~1 s).
    Event { event: &'a str },
    /// `POST /v1/events/{event}/reservations` (shoppers)
    Reserve { event: &'a str },
    /// `DELETE /v1/events/{event}/reservations/{reservation}` (shoppers: the owner only)
    CancelReservation { event: &'a str, reservation: &'a str },
    /// `GET /v1/users/{user}/reservations` (shoppers)
    Reservations { user: &'a str },
}

impl<'a> Route<'a> {
    /// The route of `method path`: 404 `not_found` when no route has this path, 405
    /// `method_not_allowed` (with `Allow`) when it takes another method. `HEAD` is `GET`.
    pub fn of(method: &str, path: &'a str) -> Result<Route<'a>, ApiError> {
        let mut segments = path.trim_end_matches('/').split('/').skip(1);
        let mut s = [""; 5];
        let mut n = 0;
        for seg in segments.by_ref() {
            if n == s.len() {
                return Err(not_found(method, path));
            }
            s[n] = seg;
            n += 1;
        }
        let (route, allowed) = match &s[..n] {
            ["healthz"] => (Route::Healthz, "GET"),
            ["v1", "webhooks", provider] => (Route::Webhook { provider }, "POST"),
            ["v1", "payments", payment_id, "complete"] => (Route::PaymentComplete { payment_id }, "POST"),
            ["v1", "quotes"] => (Route::Quote, "POST"),
            ["v1", "campaigns", campaign, "claims"] => (Route::Claim { campaign }, "POST"),
            ["v1", "users", user, "coupons"] => (Route::Wallet { user }, "GET"),
            ["v1", "products", product, "max-benefit-price"] => (Route::MaxBenefitPrice { product }, "GET"),
            ["v1", "products", product, "max-benefit-price.html"] => (Route::MaxBenefitPriceHtml { product }, "GET"),
            ["v1", "embed.js"] => (Route::EmbedScript, "GET"),
            ["v1", "embed", file] => (Route::EmbedVersioned { file }, "GET"),
            ["v1", "unsubscribe"] => (Route::Unsubscribe, "GET, POST"),
            ["v1", "events", event] => (Route::Event { event }, "GET"),
            ["v1", "events", event, "reservations"] => (Route::Reserve { event }, "POST"),
            ["v1", "events", event, "reservations", reservation] => {
                (Route::CancelReservation { event, reservation }, "DELETE")
            }
            ["v1", "users", user, "reservations"] => (Route::Reservations { user }, "GET"),
            _ => return Err(not_found(method, path)),
        };
        let takes = |m: &str| allowed.split(", ").any(|a| a == m);
        if takes(method) || (takes("GET") && method == "HEAD") {
            Ok(route)
        } else {
            Err(ApiError::MethodNotAllowed { method: method.into(), allow: allowed })
        }
    }

    /// How the platform serves this route: the one table of who answers it, whether its
    /// public answer is kept in the shared cache, and whether shops' pages may call it (CORS).
    pub fn traits(&self) -> Traits {
        use ServedBy::{Edge, EdgeThenShoppers, Shoppers};
        let (served_by, cached, pages) = match self {
            Route::Healthz => (Edge, false, false),
            Route::Webhook { .. } => (Edge, false, false),
            Route::PaymentComplete { .. } => (Edge, false, true),
            Route::Quote => (Edge, false, true),
            Route::MaxBenefitPrice { .. } => (EdgeThenShoppers, true, true),
            Route::MaxBenefitPriceHtml { .. } => (Edge, true, true),
            Route::EmbedScript => (Edge, false, true),
            Route::EmbedVersioned { .. } => (Edge, false, true),
            Route::Event { .. } => (EdgeThenShoppers, true, true),
            Route::Unsubscribe => (Shoppers, false, true),
            Route::Claim { .. } => (Shoppers, false, true),
            Route::Wallet { .. } => (Shoppers, false, true),
            Route::Reserve { .. } => (Shoppers, false, true),
            Route::CancelReservation { .. } => (Shoppers, false, true),
            Route::Reservations { .. } => (Shoppers, false, true),
        };
        Traits { served_by, cached, pages }
    }
}

/// Who answers a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedBy {
    /// The edge itself (`serve::edge::Edge`).
    Edge,
    /// The edge for its public answer (cached), the shoppers' API for what needs the store or
    /// a shopper (a personal price read, an event's view on a cache miss).
    EdgeThenShoppers,
    /// Passed to the shoppers' API (`serve::api::Api`) as it came.
    Shoppers,
}

/// A row of the route table: see [`Route::traits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traits {
    pub served_by: ServedBy,
    /// Its public answer is kept in the shared cache.
    pub cached: bool,
    /// Shops' pages call it: CORS for the shop's origins, `Vary: Origin`.
    pub pages: bool,
}

fn not_found(method: &str, path: &str) -> ApiError {
    ApiError::NotFound(format!("{method} {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_with_its_method() {
        fn ok<'a>(m: &str, p: &'a str) -> Route<'a> {
            Route::of(m, p).unwrap()
        }
        assert_eq!(ok("GET", "/healthz"), Route::Healthz);
        assert_eq!(ok("HEAD", "/healthz/"), Route::Healthz);
        assert_eq!(ok("POST", "/v1/webhooks/stripe"), Route::Webhook { provider: "stripe" });
        assert_eq!(ok("POST", "/v1/payments/p-1/complete"), Route::PaymentComplete { payment_id: "p-1" });
        assert_eq!(ok("POST", "/v1/quotes"), Route::Quote);
        assert_eq!(ok("POST", "/v1/campaigns/c/claims"), Route::Claim { campaign: "c" });
        assert_eq!(ok("GET", "/v1/users/u/coupons"), Route::Wallet { user: "u" });
        assert_eq!(ok("GET", "/v1/products/p/max-benefit-price"), Route::MaxBenefitPrice { product: "p" });
        assert_eq!(
            (ok("GET", "/v1/unsubscribe"), ok("POST", "/v1/unsubscribe/")),
            (Route::Unsubscribe, Route::Unsubscribe)
        );
        let served_by = |m, p| ok(m, p).traits().served_by;
        assert_eq!(served_by("POST", "/v1/campaigns/c/claims"), ServedBy::Shoppers);
        assert_eq!(served_by("POST", "/v1/quotes"), ServedBy::Edge);
        assert_eq!(ok("GET", "/v1/events/e-1"), Route::Event { event: "e-1" });
        assert_eq!(ok("POST", "/v1/events/e-1/reservations"), Route::Reserve { event: "e-1" });
        assert_eq!(
            ok("DELETE", "/v1/events/e-1/reservations/r-1"),
            Route::CancelReservation { event: "e-1", reservation: "r-1" }
        );
        assert_eq!(ok("GET", "/v1/users/u/reservations"), Route::Reservations { user: "u" });
        assert_eq!(served_by("POST", "/v1/events/e/reservations"), ServedBy::Shoppers);
        assert_eq!(served_by("GET", "/v1/events/e"), ServedBy::EdgeThenShoppers);
        assert!(
            ok("GET", "/v1/products/p/max-benefit-price").traits().cached && !ok("POST", "/v1/quotes").traits().cached
        );
        assert!(!ok("POST", "/v1/webhooks/stripe").traits().pages && ok("POST", "/v1/quotes").traits().pages);
        assert_eq!(ok("GET", "/v1/products/p/max-benefit-price.html"), Route::MaxBenefitPriceHtml { product: "p" });
        assert_eq!(ok("GET", "/v1/embed.js"), Route::EmbedScript);
        assert_eq!(ok("HEAD", "/v1/embed/0a1b.js"), Route::EmbedVersioned { file: "0a1b.js" });
        assert_eq!(Route::of("POST", "/v1/embed.js").unwrap_err().status(), 405);
        assert_eq!(Route::of("GET", "/v1/events/e/reservations").unwrap_err().status(), 405);
    }

    #[test]
    fn other_paths_are_404_and_other_methods_405() {
        for path in ["/", "/v1", "/v1/webhooks", "/v1/webhooks/a/b", "/healthz/x", "/v1/a/b/c/d/e/f", "//healthz"] {
            assert_eq!(Route::of("GET", path).unwrap_err().status(), 404, "{path}");
        }
        let e = Route::of("GET", "/v1/quotes").unwrap_err();
        assert_eq!((e.status(), e.into_response().header("allow")), (405, Some("POST")));
        assert_eq!(Route::of("get", "/healthz").unwrap_err().status(), 405, "methods are case-sensitive");
        let e = Route::of("DELETE", "/v1/unsubscribe").unwrap_err();
        assert_eq!((e.status(), e.into_response().header("allow")), (405, Some("GET, POST")));
    }
}
