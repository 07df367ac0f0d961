//! `promoctl dev`'s demo shop: `/demo/products/{id}` and `/demo/events/{id}`, static pages
//! built only on the public embed (`/v1/embed.js`, `<promo-price>`, `<promo-drop>`), the way a
//! shop's own pages would be, under a strict Content-Security-Policy. A dev-only token
//! switcher (`/demo/token?user=U`) mints shopper tokens as `promoctl token` does: this module
//! is compiled into promoctl only, never into the Worker.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use promo_lambdas::auth::ShopperAuth;
use promo_shared::domain::ids::UserId;
use promo_shared::pricing::fragment::escape;
use serde::Deserialize;

use crate::runtime::Platform;

/// The demo pages' own script (the token switcher and an event log): external, for the CSP.
const DEMO_JS: &str = include_str!("../assets/demo.js");
const DEMO_CSS: &str = include_str!("../assets/demo.css");

/// What the demo pages allow: scripts, styles and calls from this origin only; no inline
/// script or style, no eval. The embed works under it.
pub const DEMO_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                            img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The shoppers the switcher offers (any id may be typed in its field).
const SHOPPERS: [&str; 3] = ["u-jane", "u-bob", "u-amy"];

#[derive(Clone)]
struct Demo {
    platform: Arc<Platform>,
    auth: Arc<ShopperAuth>,
}

/// The demo shop's routes, signing tokens with `auth` (the platform's own shopper secret).
pub fn router(platform: Arc<Platform>, auth: ShopperAuth) -> Router {
    Router::new()
        .route("/demo", get(index))
        .route("/demo/", get(index))
        .route("/demo/products/{id}", get(product))
        .route("/demo/events/{id}", get(event))
        .route("/demo/token", get(token))
        .route("/demo/demo.js", get(|| async { asset("text/javascript; charset=utf-8", DEMO_JS) }))
        .route("/demo/demo.css", get(|| async { asset("text/css; charset=utf-8", DEMO_CSS) }))
        .with_state(Demo { platform, auth: Arc::new(auth) })
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    locale: Option<String>,
    quantity: Option<u32>,
}

fn page(title: &str, body: &str) -> Response {
    let shoppers: String =
        SHOPPERS.iter().map(|u| format!("<option value=\"{u}\">{u}</option>")).collect::<Vec<_>>().concat();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · demo shop</title>\
<link rel=\"stylesheet\" href=\"/demo/demo.css\">\
<script type=\"module\" src=\"/v1/embed.js\"></script>\
<script type=\"module\" src=\"/demo/demo.js\"></script></head>\
<body><header><a href=\"/demo\">Demo shop</a>\
<label>Shopper (dev only) <select id=\"shopper\"><option value=\"\">signed out</option>{shoppers}</select></label>\
</header><main><h1>{title}</h1>{body}\
<h2>What the embed said</h2><ol id=\"log\" aria-live=\"off\"></ol></main></body></html>\n",
        title = escape(title)
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, DEMO_CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

async fn index() -> Response {
    page(
        "Demo shop",
        "<p>Pages built only on the public embed. Try <a href=\"/demo/products/p-1\">product p-1</a>, \
<a href=\"/demo/products/p-1?locale=en-US\">p-1 in en-US</a>, <a href=\"/demo/products/p-2\">product p-2</a> \
or the drop <a href=\"/demo/events/signed-100\">signed-100</a>.</p>",
    )
}

async fn product(State(demo): State<Demo>, Path(id): Path<String>, Query(q): Query<PageQuery>) -> Response {
    let locale = q.locale.unwrap_or_else(|| "ko-KR".into());
    // The server-side fragment, as a shop without JavaScript would include it; the embed
    // upgrades it in place.
    let req = promo_shared::http::Request::new("GET", &format!("/v1/products/{id}/max-benefit-price.html"));
    let served = demo.platform.edge.respond(&req, demo.platform.clock.now()).await.response;
    let fragment = if served.status == 200 {
        String::from_utf8_lossy(&served.body).into_owned()
    } else {
        format!("<promo-price product=\"{}\"></promo-price>", escape(&id))
    };
    let attrs = format!(" locale=\"{}\" quantity=\"{}\"", escape(&locale), q.quantity.unwrap_or(1).max(1));
    let element = fragment.replacen("<promo-price ", &format!("<promo-price{attrs} "), 1);
    page(
        &format!("Product {id}"),
        &format!("<section class=\"product\"><p class=\"name\">Product <b>{}</b></p>{element}</section>", escape(&id)),
    )
}

async fn event(Path(id): Path<String>, Query(q): Query<PageQuery>) -> Response {
    let locale = q.locale.unwrap_or_else(|| "ko-KR".into());
    page(
        &format!("Drop {id}"),
        &format!(
            "<section class=\"drop\"><promo-drop event=\"{}\" locale=\"{}\"></promo-drop></section>",
            escape(&id),
            escape(&locale)
        ),
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    user: String,
}

/// A shopper token for `user`, valid an hour (dev only).
async fn token(State(demo): State<Demo>, Query(q): Query<TokenQuery>) -> Response {
    let (status, body) = match UserId::parse(q.user) {
        Ok(user) => {
            let token = demo.auth.mint(&user, demo.platform.clock.now(), chrono::Duration::hours(1));
            (StatusCode::OK, serde_json::json!({"token": token}))
        }
        Err(e) => {
            (StatusCode::BAD_REQUEST, serde_json::json!({"error": {"code": "invalid_id", "message": e.to_string()}}))
        }
    };
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];
    (status, headers, body.to_string()).into_response()
}
