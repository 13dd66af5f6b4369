//! `GET /graphql`: GraphiQL, for staff and developers exploring the API with a token.
//!
//! async-graphql's page loads React and GraphiQL from unpkg.com by major version (whatever is
//! published next runs in a page where staff paste tokens to protected health information)
//! with an inline script and no Content-Security-Policy. This page pins exact versions, each
//! file with its Subresource Integrity hash (sha384 of the file in the package's npm tarball,
//! which unpkg serves byte for byte), so a changed file is refused by the browser; its one
//! script of ours is served from this origin, and [`CONTENT_SECURITY_POLICY`] allows nothing
//! else.

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

/// What the page may load and connect to: scripts from this origin and the three pinned
/// packages' folders, the stylesheet's folder, the fonts and images GraphiQL's stylesheet
/// carries as data URLs, requests and the websocket to this origin; no frames, forms or base.
/// Styles may be inline: GraphiQL's editor sets element styles as it lays out.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src 'self' https://unpkg.com/react@18.3.1/ https://unpkg.com/react-dom@18.3.1/ \
     https://unpkg.com/graphiql@4.1.2/; \
     style-src 'self' 'unsafe-inline' https://unpkg.com/graphiql@4.1.2/; \
     font-src data:; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /graphql`: the page.
pub async fn page() -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        )],
        Html(include_str!("graphiql/page.html")),
    )
        .into_response()
}

/// `GET /graphql/graphiql.js`: the page's script, which starts GraphiQL.
pub async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("graphiql/start.js"),
    )
        .into_response()
}
