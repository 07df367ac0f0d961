//! `GET /v1/products/{id}/max-benefit-price.html`: the public max-benefit price as an HTML
//! fragment, for a shop that includes it server-side (no JavaScript needed) and which
//! `<promo-price>` (the embed script) upgrades in place: the fragment's root is the element.
//!
//! It is the JSON answer's other form, read through the same cache entry
//! ([`crate::pricing::prices::read`]: same key, freshness, stale-while-revalidate, purge on
//! deploy, `X-Cache`, `Age`), rendered on the way out; its `ETag` is the JSON's with `-html`
//! (a distinct representation), and a matching `If-None-Match` is a 304. Every text taken
//! from the answer is HTML-escaped; the markup has classes and no inline style, so a page
//! under a strict Content-Security-Policy shows it as is.

use chrono::{DateTime, Utc};

use crate::pricing::prices::{self, CachePolicy, PriceRead};
use serde_json::Value;

use crate::domain::money::Currency;
use crate::http::{ApiError, Request, Response};
use crate::ports::catalog::Catalog;
use crate::ports::price_cache::PriceCache;

/// Escapes `s` for HTML text and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `minor` units of `currency` for people, grouped by thousands: `37,800원` (KRW),
/// `USD 1,234.50` (others).
pub fn money(minor: i64, currency: Currency) -> String {
    let exp = u32::from(currency.minor_unit_exponent());
    let scale = 10_i64.pow(exp);
    let (whole, frac) = (minor.abs() / scale, minor.abs() % scale);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(d);
    }
    let sign = if minor < 0 { "-" } else { "" };
    let number = if exp == 0 { grouped } else { format!("{grouped}.{frac:0width$}", width = exp as usize) };
    match currency.code() {
        "KRW" => format!("{sign}{number}원"),
        code => format!("{sign}{code} {number}"),
    }
}

/// The fragment of `answer` (the JSON answer, [`crate::domain::pricing::Answer`]'s form) for
/// `product`. Read as JSON, not as the typed answer: the Worker then carries no second
/// deserializer of it (its wasm is size-bound).
pub fn render(product: &str, answer: &Value) -> Result<String, ApiError> {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let code = answer["currency"].as_str().unwrap_or_default();
    let currency = Currency::parse(code)
        .map_err(|e| ApiError::Internal(format!("a price answer's currency `{code}` is not valid: {e}")))?;
    let m = |v: &Value| money(int(v), currency);
    let (list, fin) = (&answer["list_total"], &answer["final_price"]);
    let mut html = format!(
        "<promo-price product=\"{}\" data-final-price=\"{}\" data-currency=\"{}\"",
        escape(product),
        int(fin),
        currency.code()
    );
    if let Some(v) = answer["valid_until"].as_str() {
        html.push_str(&format!(" data-valid-until=\"{}\"", escape(v)));
    }
    html.push_str("><div class=\"promo-price\"><div class=\"promo-price-row\">");
    if int(list) > int(fin) {
        html.push_str(&format!(
            "<s class=\"promo-price-list\"><span class=\"promo-sr\">List price </span>{}</s> ",
            m(list)
        ));
    }
    html.push_str(&format!(
        "<strong class=\"promo-price-final\"><span class=\"promo-sr\">Best price </span>{}</strong></div>",
        m(fin)
    ));
    let to_download: Vec<&str> =
        answer["to_download"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let mut benefits = String::new();
    for b in answer["breakdown"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let label = match b["kind"].as_str().unwrap_or_default() {
            "product_coupon" => "Coupon".to_string(),
            "cart_coupon" => "Order coupon".to_string(),
            "mileage" => "Mileage".to_string(),
            "payment_promotion" => {
                format!("Pay with {}", answer["payment_method"].as_str().unwrap_or("the promoted method"))
            }
            _ => continue,
        };
        let id = b["id"].as_str();
        let name = id.map(|id| format!(" <b>{}</b>", escape(id.rsplit(':').next().unwrap_or_default())));
        let download = id.is_some_and(|id| to_download.contains(&id));
        benefits.push_str(&format!(
            "<li>{}{}{}: −{}</li>",
            escape(&label),
            name.unwrap_or_default(),
            if download { " (download the coupon)" } else { "" },
            m(&b["amount"])
        ));
    }
    if !benefits.is_empty() {
        html.push_str("<details class=\"promo-price-benefits\"><summary>How to get this price</summary><ul>");
        html.push_str(&benefits);
        html.push_str("</ul></details>");
    }
    html.push_str("</div></promo-price>\n");
    Ok(html)
}

/// Serves the fragment of `product`'s public answer (a bearer token is ignored: a fragment
/// is included by the shop's server, for everyone).
pub async fn read<C, K>(
    catalog: &C,
    cache: &K,
    req: &Request,
    product: &str,
    now: DateTime<Utc>,
    policy: CachePolicy,
) -> Result<PriceRead, ApiError>
where
    C: Catalog + ?Sized,
    K: PriceCache + ?Sized,
{
    // The JSON's validators are not the fragment's: the conditional is answered here.
    let mut json_req = req.clone();
    json_req
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("if-none-match") && !k.eq_ignore_ascii_case("authorization"));
    let read = prices::read(catalog, cache, &json_req, product, None, now, policy).await?;
    let json = read.response;
    let answer: Value = serde_json::from_slice(&json.body)
        .map_err(|e| ApiError::Internal(format!("a cached price answer does not parse: {e}")))?;
    let etag = json.header("etag").map(|t| format!("{}-html\"", t.trim_end_matches('"'))).unwrap_or_default();
    let not_modified = req.header_values("if-none-match").flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str())
    });
    let mut resp = if not_modified {
        Response { status: 304, headers: vec![], body: vec![] }
    } else {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: render(product, &answer)?.into_bytes(),
        }
    };
    resp.headers.push(("etag".into(), etag));
    for name in ["cache-control", "age", "vary", "x-cache"] {
        if let Some(v) = json.header(name) {
            resp.headers.push((name.into(), v.into()));
        }
    }
    Ok(PriceRead { response: resp, revalidate: read.revalidate })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        // Checked against the typed answer: the fragment reads what the engine writes.
        let typed: crate::domain::pricing::Answer = serde_json::from_value(serde_json::json!({"currency":"KRW","list_total":59000,"base":52000,"final_price":37800,
            "product_coupon":"nov:welcome","cart_coupon":null,"payment_promotion":"nov:card-x","payment_method":"card:x",
            "mileage_used":3000,"to_download":["nov:welcome"],
            "lines":[{"product":"p-1","quantity":1,"base":52000,"product_coupon":"nov:welcome","product_discount":7000}],
            "breakdown":[{"kind":"base","id":null,"amount":52000},
                {"kind":"product_coupon","id":"nov:welcome","line":0,"amount":7000},
                {"kind":"mileage","id":null,"amount":3000},
                {"kind":"payment_promotion","id":"nov:card-x","amount":4200},
                {"kind":"final_price","id":null,"amount":37800}],
            "valid_until":"2026-12-01T00:00:00Z"}))
        .unwrap();
        serde_json::to_value(typed).unwrap()
    }

    #[test]
    fn money_is_grouped_in_the_currencys_units() {
        let krw = Currency::parse("KRW").unwrap();
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(money(37800, krw), "37,800원");
        assert_eq!(money(1_234_567, krw), "1,234,567원");
        assert_eq!(money(0, krw), "0원");
        assert_eq!(money(123_450, usd), "USD 1,234.50");
        assert_eq!(money(5, usd), "USD 0.05");
    }

    #[test]
    fn the_fragment_is_the_element_with_the_answer_inside() {
        let html = render("p-1", &sample()).unwrap();
        assert!(html.starts_with(
            "<promo-price product=\"p-1\" data-final-price=\"37800\" data-currency=\"KRW\" \
             data-valid-until=\"2026-12-01T00:00:00Z\">"
        ));
        assert!(html.contains("<s class=\"promo-price-list\"><span class=\"promo-sr\">List price </span>59,000원</s>"));
        assert!(html.contains("<span class=\"promo-sr\">Best price </span>37,800원</strong>"));
        assert!(html.contains("<li>Coupon <b>welcome</b> (download the coupon): −7,000원</li>"), "{html}");
        assert!(html.contains("<li>Mileage: −3,000원</li>"));
        assert!(html.contains("<li>Pay with card:x <b>card-x</b>: −4,200원</li>"));
        assert!(!html.contains("style="), "no inline style: strict CSPs show it");
    }

    #[tokio::test]
    async fn the_fragment_is_read_through_the_jsons_cache_entry() {
        use crate::pricing::prices::tests::{Map, book, catalog};
        use crate::testing::at;
        let (c, k) = (catalog(), Map::default());
        let get = |etag: Option<&str>| {
            let mut req = Request::new("GET", "/v1/products/p-1/max-benefit-price.html");
            if let Some(t) = etag {
                req = req.header("if-none-match", t);
            }
            req
        };
        let html = |req: Request, now: &'static str| {
            let (c, k) = (&c, &k);
            async move { read(c, k, &req, "p-1", at(now), CachePolicy::default()).await.unwrap().response }
        };
        let json = crate::pricing::prices::read(
            &c,
            &k,
            &Request::new("GET", "/v1/products/p-1/max-benefit-price"),
            "p-1",
            None,
            at("2026-11-22T12:00:00Z"),
            CachePolicy::default(),
        )
        .await
        .unwrap()
        .response;
        assert_eq!(json.header("x-cache"), Some("MISS"));
        let first = html(get(None), "2026-11-22T12:00:10Z").await;
        assert_eq!(first.header("x-cache"), Some("HIT"), "the JSON's entry");
        assert_eq!(first.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(first.header("age"), Some("10"));
        assert_eq!(first.header("cache-control"), Some("public, max-age=50, stale-while-revalidate=300"));
        let body = String::from_utf8(first.body.clone()).unwrap();
        assert!(body.contains("data-final-price=\"45000\""), "{body}");
        let etag = first.header("etag").unwrap().to_string();
        assert_eq!(etag, format!("{}-html\"", json.header("etag").unwrap().trim_end_matches('"')));
        let same = html(get(Some(&etag)), "2026-11-22T12:00:20Z").await;
        assert_eq!((same.status, same.body.len()), (304, 0));
        let json_tag = html(get(json.header("etag")), "2026-11-22T12:00:20Z").await;
        assert_eq!(json_tag.status, 200, "the JSON's validator is not the fragment's");
        // A deploy that changes the offers: a miss at once, the new price.
        *c.0.lock().unwrap() = book(20);
        let after = html(get(Some(&etag)), "2026-11-22T12:00:30Z").await;
        assert_eq!((after.status, after.header("x-cache")), (200, Some("MISS")));
        assert!(String::from_utf8(after.body).unwrap().contains("data-final-price=\"40000\""));
    }

    #[test]
    fn text_from_the_answer_is_escaped() {
        let mut a = sample();
        a["payment_method"] = "<img src=x onerror=alert(1)>\"&'".into();
        let html = render("p-\"1", &a).unwrap();
        assert!(html.contains("Pay with &lt;img src=x onerror=alert(1)&gt;&quot;&amp;&#39;"), "{html}");
        assert!(html.starts_with("<promo-price product=\"p-&quot;1\""));
        assert!(!html.contains("<img"));
    }
}
