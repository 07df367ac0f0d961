//! `POST /v1/quotes`: the max-benefit price of a product or a cart (docs/marketers/pricing.md),
//! the same JSON `promoctl quote` reads. Pure computation, so it runs at the edge.
//!
//! 200 with the answer; 400 `invalid_body` for a body that is not a quote request (not UTF-8,
//! not JSON, wrong types, unknown fields); 422 `invalid_quote` for values that break the rules
//! (every problem named by its field) or a cart too complex to price.

use crate::domain::pricing;

use crate::domain::pricing::QuoteError;

use crate::http::ApiError;
use crate::http::Request;
use crate::http::Response;

pub fn handle(req: &Request) -> Result<Response, ApiError> {
    let body = std::str::from_utf8(&req.body).map_err(|_| ApiError::InvalidBody("body is not UTF-8".into()))?;
    let answer = pricing::quote_json(body).map_err(|e| match e {
        QuoteError::Malformed(_) => ApiError::InvalidBody(e.to_string()),
        QuoteError::Invalid(_) | QuoteError::TooComplex { .. } => ApiError::InvalidQuote(e.to_string()),
    })?;
    let mut resp = Response::json(200, &answer);
    resp.headers.push(("cache-control".into(), "no-store".into()));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn post(body: &str) -> Result<Response, ApiError> {
        handle(&Request::new("POST", "/v1/quotes").body(body))
    }

    #[test]
    fn quotes_the_spec_example() {
        let body = include_str!("../../../examples/quote-request.json");
        let resp = post(body).unwrap();
        assert_eq!(resp.status, 200);
        let answer = resp.json_body();
        assert_eq!(answer["final_price"], 37800);
        assert_eq!(answer["product_coupon"], "welcome");
        assert_eq!(answer["payment_promotion"], "card-x");
        assert_eq!(answer["mileage_used"], 3000);
    }

    #[test]
    fn bad_requests_are_400_or_422_with_the_field() {
        assert_eq!(post("not json").unwrap_err().status(), 400);
        let e = post(
            r#"{"currency":"KRW","now":"2026-11-22T12:00:00Z","rounding_unit":0,
            "product":{"id":"p-1","list_price":100,"sale_price":100}}"#,
        )
        .unwrap_err();
        assert_eq!(e.status(), 422, "{e}");
        assert_eq!(e.code(), "invalid_quote");
        assert!(e.to_string().contains("rounding_unit"), "{e}");
        assert_eq!(handle(&Request::new("POST", "/v1/quotes").body(vec![0xff, 0xfe])).unwrap_err().status(), 400);
    }
}
