//! The OpenAPI 3.1 description of the API, generated from the handlers' `#[utoipa::path]`
//! annotations and the view types' schemas, served at `GET /openapi.json`, with an interactive
//! page at `GET /docs/` (Swagger UI, served from the binary).
//!
//! Three modifiers finish what the annotations leave out, so that every operation says the same
//! thing the same way:
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

use std::sync::OnceLock;

use axum::{Json, Router, response::IntoResponse};
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

use crate::{error::ErrorBody, routes};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Issuance engine",
        description = "First-come issuance of golden tickets and coupons, the admin tools around it, \
                       and a small shop. Every error answers the `ErrorBody` shape with a stable `code`.",
    ),
    paths(
        routes::events::create,
        routes::events::list,
        routes::events::show,
        routes::events::update,
        routes::tickets::issue,
        routes::tickets::list_for_user,
        routes::coupons::issue,
        routes::coupons::list_for_user,
        routes::coupons::list_by_query,
        routes::points::charge,
        routes::points::balance,
        routes::points::history,
        routes::products::list,
        routes::products::show,
        routes::best_products::show,
        routes::orders::create,
        routes::orders::checkout,
        routes::orders::pay,
        routes::orders::show,
        routes::orders::list_for_user,
        routes::admin::events::create,
        routes::admin::events::list,
        routes::admin::events::show,
        routes::admin::events::update,
        routes::admin::events::delete,
        routes::admin::events::change_status,
        routes::admin::inventories::create,
        routes::admin::inventories::list,
        routes::admin::inventories::show,
        routes::admin::inventories::update,
        routes::admin::inventories::delete,
        routes::admin::batches::create,
        routes::admin::batches::list,
        routes::admin::batches::show,
        routes::admin::batches::update,
        routes::admin::batches::delete,
        routes::admin::jobs::generate,
        routes::admin::jobs::upload,
        routes::admin::jobs::list,
        routes::admin::jobs::show,
        routes::admin::jobs::cancel,
        routes::admin::codes::list,
        routes::admin::codes::export,
        routes::admin::catalog::create_user,
        routes::admin::catalog::list_users,
        routes::admin::catalog::show_user,
        routes::admin::catalog::create_product,
        routes::admin::catalog::list_products,
        routes::admin::catalog::show_product,
        routes::admin::dashboard::show,
        routes::admin::reports::list,
        routes::admin::reports::show,
        routes::admin::reports::retry,
        routes::admin::reports::retry_dead,
        routes::admin::reports::compute_best,
        routes::ops::health,
        routes::ops::ready,
        routes::ops::metrics,
        document,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security, &CommonErrors, &Aliases, &OperationIds, &Links),
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

/// The document, built once.
pub fn document_json() -> &'static openapi::OpenApi {
    static DOC: OnceLock<openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "ops", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn document() -> impl IntoResponse {
    Json(document_json())
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

/// The seeds' alternative spellings: `(path, method, alias)`.
const ALIASES: [(&str, HttpMethod, &str); 3] = [
    (
        "/api/v1/points/{userId}",
        HttpMethod::Get,
        "/api/v1/wallets/{userId}",
    ),
    (
        "/api/v1/points/{userId}",
        HttpMethod::Post,
        "/api/v1/wallets/{userId}/charge",
    ),
    ("/api/v1/products/best", HttpMethod::Get, "/api/v1/products/top"),
];

/// Copies operations to their aliases ([`OperationIds`] then names the copies after their paths).
struct Aliases;

impl Modify for Aliases {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        for (path, method, alias) in ALIASES {
            let Some(item) = doc.paths.paths.get(path) else {
                continue;
            };
            let (op, name) = match method {
                HttpMethod::Get => (item.get.clone(), "GET"),
                _ => (item.post.clone(), "POST"),
            };
            let Some(mut op) = op else { continue };
            op.description = Some(format!("Alias of `{name} {path}`."));
            let target = doc.paths.paths.entry(alias.to_owned()).or_default();
            match method {
                HttpMethod::Get => target.get = Some(op),
                _ => target.post = Some(op),
            }
        }
    }
}

/// `operationId`s from method and path: `POST /api/v1/admin/coupon-batches/{batchId}/codes` is
/// `postAdminCouponBatchesBatchIdCodes`.
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
    let words = path
        .split(['/', '-', '{', '}', '.'])
        .filter(|w| !w.is_empty() && *w != "api" && *w != "v1");
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

const LINKS: [LinkRow; 8] = [
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
