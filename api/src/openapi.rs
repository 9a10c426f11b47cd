//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json`, with an interactive
//! page at `GET /docs/` (Swagger UI, served from the binary). The route list
//! ([`crate::routes::router`]) builds it from the handlers' `#[utoipa::path]` annotations and the
//! view types' schemas while it registers them; this module holds the frame ([`ApiDoc`]) and
//! never looks at the routes.
//!
//! Five modifiers ([`finish`]) complete what the annotations leave out, so that every operation
//! says the same thing the same way:
//! * [`Security`] declares the bearer scheme; operations are protected unless annotated
//!   `security(())`.
//! * [`CommonErrors`] adds the errors any operation of its kind can answer: 400 when it takes
//!   input, 401/403 when it needs a token, 503 when Redis or Postgres is down. Errors particular
//!   to an operation (404, 409, 429 …) are in its own annotation.
//! * [`Aliases`] copies an operation to the seeds' alternative spellings of its path.
//! * [`OperationIds`] names every operation after its method and path (handlers in different
//!   modules share names such as `list`), so each `operationId` is unique.
//! * [`Links`] says which response field feeds which operation's parameter (a created event's
//!   `eventId` → `GET /events/{eventId}` …), so clients and stateful fuzzers can follow them.

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, ContentBuilder, HttpMethod, PathItem, Ref, RefOr, ResponseBuilder,
        link::LinkBuilder,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ErrorBody;

/// The document's frame: what is not an operation. The operations come from the route list.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Issuance engine",
        description = "First-come issuance of golden tickets and coupons, the admin tools around it, \
                       and a small shop. Every error answers the `ErrorBody` shape with a stable `code`.",
    ),
    paths(document),
    components(schemas(ErrorBody)),
    security(("bearer" = [])),
    tags(
        (name = "tickets", description = "Golden-ticket events and their first-come issue"),
        (name = "coupons", description = "First-come coupons"),
        (name = "shop", description = "Points, products, orders and payments"),
        (name = "admin", description = "Admin API (an admin token)"),
        (name = "ops", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Finishes the document the route list built (see [`crate::routes::router`]): the security
/// scheme, the errors common to each kind of operation, the aliases' copies, the operation ids
/// and the links, in that order.
pub fn finish(mut doc: openapi::OpenApi, aliases: &[Alias]) -> openapi::OpenApi {
    Security.modify(&mut doc);
    CommonErrors.modify(&mut doc);
    Aliases(aliases).modify(&mut doc);
    OperationIds.modify(&mut doc);
    Links.modify(&mut doc);
    doc
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "ops", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn document(Extension(doc): Extension<Arc<openapi::OpenApi>>) -> Response {
    Json(doc.as_ref()).into_response()
}

/// An interactive reference of the document at `/docs/` (Swagger UI). Its assets are built
/// into the binary (the `vendored` feature), so the page works on a machine or an intranet
/// without internet; it reads the document from `/openapi.json`.
pub fn docs<S: Clone + Send + Sync + 'static>() -> Router<S> {
    SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::from("/openapi.json").try_it_out_enabled(true))
        .into()
}

/// The bearer scheme (an HS256 JWT with `sub` and `roles`).
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 with `sub` (the user id) and `roles` (`ROLE_USER`, `ROLE_ADMIN`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The errors every operation of a kind can answer.
struct CommonErrors;

/// Operations that never touch Redis or Postgres, so never answer 503.
const NO_BACKEND: [&str; 3] = ["/health", "/openapi.json", "/metrics"];

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, description) in [
            (
                "BadRequest",
                "`INVALID_REQUEST` (malformed body, path or query) or a rule the input breaks",
            ),
            ("Unauthorized", "`UNAUTHORIZED`: no valid bearer token"),
            (
                "Forbidden",
                "`FORBIDDEN`: the token may not do this (another user's resource, or not an admin)",
            ),
            (
                "Unavailable",
                "`SERVICE_UNAVAILABLE`: Redis or Postgres does not answer; retry later",
            ),
        ] {
            components
                .responses
                .insert(name.to_owned(), error_response(description));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let backend = !NO_BACKEND.contains(&path.as_str());
            for op in operations(item) {
                let protected = op.security.is_none();
                let takes_input =
                    op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut add = |status: &str, name: &str| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                };
                if takes_input {
                    add("400", "BadRequest");
                }
                if protected {
                    add("401", "Unauthorized");
                    add("403", "Forbidden");
                }
                if backend {
                    add("503", "Unavailable");
                }
            }
        }
    }
}

/// Another spelling of an operation's path (the seeds name a few twice).
#[derive(Clone)]
pub struct Alias {
    path: &'static str,
    method: HttpMethod,
    alias: &'static str,
}

impl Alias {
    /// `GET alias` is `GET path`.
    pub const fn get(path: &'static str, alias: &'static str) -> Self {
        Self {
            path,
            method: HttpMethod::Get,
            alias,
        }
    }

    /// `POST alias` is `POST path`.
    pub const fn post(path: &'static str, alias: &'static str) -> Self {
        Self {
            path,
            method: HttpMethod::Post,
            alias,
        }
    }
}

/// Copies operations to their aliases ([`OperationIds`] then names the copies after their paths).
struct Aliases<'a>(&'a [Alias]);

impl Modify for Aliases<'_> {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        for Alias { path, method, alias } in self.0 {
            let Some(item) = doc.paths.paths.get(*path) else {
                continue;
            };
            let (op, name) = match method {
                HttpMethod::Get => (item.get.clone(), "GET"),
                _ => (item.post.clone(), "POST"),
            };
            let Some(mut op) = op else { continue };
            op.description = Some(format!("Alias of `{name} {path}`."));
            let target = doc.paths.paths.entry((*alias).to_owned()).or_default();
            match method {
                HttpMethod::Get => target.get = Some(op),
                _ => target.post = Some(op),
            }
        }
    }
}

/// `operationId`s from method and path: `POST /api/v1/admin/coupon-batches/{batchId}/codes` is
/// `postAdminCouponBatchesBatchIdCodes` (the `/api/v1` prefix dropped); `GET /api/events` (the
/// campaigns, without `v1`) is `getApiEvents`, apart from `GET /events`.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations_by_method(item) {
                op.operation_id = Some(operation_id(method, path));
            }
        }
    }
}

/// The id [`OperationIds`] gives `method path`.
pub fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let words = path.split(['/', '-', '{', '}', '.']).filter(|w| !w.is_empty());
    for word in words {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// `(operation, status, response field, operations whose one path parameter it feeds)`.
type LinkRow = (
    (&'static str, &'static str),
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const ADMIN_EVENT: &str = "/api/v1/admin/events/{eventId}";
const INVENTORY: &str = "/api/v1/admin/coupon-inventories/{inventoryId}";
const BATCH: &str = "/api/v1/admin/coupon-batches/{batchId}";
const JOB: &str = "/api/v1/admin/coupon-jobs/{jobId}";

const LINKS: [LinkRow; 11] = [
    (
        ("post", "/events"),
        "201",
        "eventKey",
        &[
            ("get", "/events/{eventKey}"),
            ("patch", "/events/{eventKey}"),
            ("post", "/events/{eventKey}/tickets"),
        ],
    ),
    (
        ("post", "/api/v1/admin/events"),
        "201",
        "eventId",
        &[
            ("get", ADMIN_EVENT),
            ("put", ADMIN_EVENT),
            ("delete", ADMIN_EVENT),
            ("put", "/api/v1/admin/events/{eventId}/status"),
        ],
    ),
    (
        ("post", "/api/v1/admin/coupon-inventories"),
        "201",
        "inventoryId",
        &[("get", INVENTORY), ("put", INVENTORY), ("delete", INVENTORY)],
    ),
    (
        ("post", "/api/v1/admin/coupon-batches"),
        "201",
        "batchId",
        &[
            ("get", BATCH),
            ("put", BATCH),
            ("delete", BATCH),
            ("get", "/api/v1/admin/coupon-batches/{batchId}/codes"),
            ("get", "/api/v1/admin/coupon-batches/{batchId}/codes/export"),
            ("post", "/api/v1/admin/coupon-batches/{batchId}/generate-coupons"),
            ("post", "/api/v1/admin/coupon-batches/{batchId}/partner-codes"),
            ("post", "/api/v1/coupons/{couponId}/issue"),
        ],
    ),
    (
        ("post", "/api/v1/admin/coupon-batches/{batchId}/generate-coupons"),
        "202",
        "jobId",
        &[("get", JOB), ("post", "/api/v1/admin/coupon-jobs/{jobId}/cancel")],
    ),
    (
        ("post", "/api/events/purposes"),
        "200",
        "eventDraftId",
        &[
            ("get", "/api/events/{id}"),
            ("post", "/api/events/{id}/ai-recommendations"),
            ("post", "/api/events/{id}/content-generation"),
            ("put", "/api/events/drafts/{id}/recommendation"),
            ("put", "/api/events/drafts/{id}/content"),
            ("post", "/api/events/{id}/publish"),
        ],
    ),
    (
        ("post", "/api/events/{id}/ai-recommendations"),
        "202",
        "jobId",
        &[("get", "/api/jobs/{jobId}/status")],
    ),
    (
        ("post", "/api/events/{id}/content-generation"),
        "202",
        "jobId",
        &[("get", "/api/jobs/{jobId}/status")],
    ),
    (
        ("post", "/api/v1/admin/users"),
        "201",
        "userId",
        &[
            ("get", "/api/v1/admin/users/{userId}"),
            ("get", "/api/v1/points/{userId}"),
            ("post", "/api/v1/points/{userId}"),
            ("get", "/api/v1/points/{userId}/history"),
            ("get", "/users/{userId}/tickets"),
            ("get", "/api/v1/users/{userId}/coupons"),
            ("get", "/api/v1/users/{userId}/orders"),
        ],
    ),
    (
        ("post", "/api/v1/admin/products"),
        "201",
        "productId",
        &[
            ("get", "/api/v1/admin/products/{productId}"),
            ("get", "/api/v1/products/{productId}"),
        ],
    ),
    (
        ("post", "/api/v1/orders"),
        "201",
        "orderId",
        &[("get", "/api/v1/orders/{orderId}")],
    ),
];

/// Adds [`LINKS`] to the responses they start from.
struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        for ((method, path), status, field, targets) in LINKS {
            let links: Vec<(String, openapi::link::Link)> = targets
                .iter()
                .map(|(m, p)| {
                    let id = operation_id(m, p);
                    let param = p
                        .rsplit('{')
                        .next()
                        .and_then(|rest| rest.split('}').next())
                        .unwrap_or_default();
                    let link = LinkBuilder::new()
                        .operation_id(id.clone())
                        .parameter(param, format!("$response.body#/{field}"))
                        .build();
                    (id, link)
                })
                .collect();
            let Some(item) = doc.paths.paths.get_mut(path) else {
                continue;
            };
            let Some(op) = operations_by_method(item)
                .into_iter()
                .find_map(|(m, op)| (m == method).then_some(op))
            else {
                continue;
            };
            if let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) {
                response
                    .links
                    .extend(links.into_iter().map(|(k, v)| (k, RefOr::T(v))));
            }
        }
    }
}

/// An error response with the [`ErrorBody`] schema.
fn error_response(description: &str) -> RefOr<openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    operations_by_method(item).into_iter().map(|(_, op)| op)
}

fn operations_by_method(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("put", item.put.as_mut()),
        ("patch", item.patch.as_mut()),
        ("delete", item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}
