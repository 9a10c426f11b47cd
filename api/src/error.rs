//! `ApiError`, the only error the handlers return, and the one place it becomes a response.
//!
//! [`ApiError::parts`] is the whole table: status, stable `code`, message. Handlers return the
//! error; [`ApiError::into_response`] writes the SPEC §1 body `{timestamp, status, statusCode,
//! error, code, message, path}` and logs 5xx with their cause. The request path comes from
//! [`crate::guard::GuardLayer`], which runs every request inside a task-local holding its URI
//! (carrying the parts to the middleware in the response extensions instead cost a sold-out
//! answer a map, a box and a second response, a sixth of its instructions). The client never
//! sees Redis or SQL text.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::{
    extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use issuance_core::{
    clock,
    error::{Denial, ScopeKind},
};
use serde::Serialize;
use tokio::task::futures::TaskLocalFuture;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body, path or query is malformed or breaks a rule.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No valid bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// A valid token that may not do this.
    #[error("forbidden")]
    Forbidden,
    /// No such route.
    #[error("route not found")]
    RouteNotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than the route accepts.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body's media type is not one the route reads.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Over a rate limit; retry after this many seconds.
    #[error("rate limited")]
    RateLimited(u64),
    /// Every request slot of the process is taken (load shed).
    #[error("overloaded")]
    Overloaded,
    /// The answer was not ready within the request timeout.
    #[error("request timed out")]
    Timeout,
    /// The request body did not arrive within the body timeout.
    #[error("request body timed out")]
    BodyTimeout,
    /// From the issuance core.
    #[error("no channel took the campaign")]
    DistributionFailed(Vec<serde_json::Value>),
    #[error(transparent)]
    Issuer(#[from] issuance_core::Error),
}

tokio::task_local! {
    /// The URI of the request being answered (set by [`crate::guard::GuardLayer`]).
    static REQUEST_URI: Uri;
}

impl ApiError {
    /// The table: status, code, message.
    fn parts(&self) -> (StatusCode, &'static str, Cow<'static, str>) {
        use issuance_core::Error as E;
        let fixed = |status, code, message: &'static str| (status, code, Cow::Borrowed(message));
        match self {
            ApiError::InvalidRequest(detail) => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                Cow::Owned(format!("잘못된 요청입니다: {detail}")),
            ),
            ApiError::Unauthorized => fixed(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "인증이 필요합니다."),
            ApiError::Forbidden => fixed(StatusCode::FORBIDDEN, "FORBIDDEN", "권한이 없습니다."),
            ApiError::RouteNotFound => fixed(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "요청한 경로를 찾을 수 없습니다.",
            ),
            ApiError::MethodNotAllowed => fixed(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "허용되지 않은 메서드입니다.",
            ),
            ApiError::PayloadTooLarge => fixed(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "요청 본문이 너무 큽니다.",
            ),
            ApiError::UnsupportedMediaType => fixed(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "지원하지 않는 Content-Type입니다.",
            ),
            ApiError::RateLimited(_) => fixed(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "요청이 너무 많습니다. 잠시 후 다시 시도해주세요.",
            ),
            ApiError::Overloaded | ApiError::Timeout => fixed(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "일시적으로 서비스를 이용할 수 없습니다. 잠시 후 다시 시도해주세요.",
            ),
            ApiError::BodyTimeout => fixed(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                "요청 본문이 제시간에 도착하지 않았습니다.",
            ),
            ApiError::DistributionFailed(_) => fixed(
                StatusCode::SERVICE_UNAVAILABLE,
                "DISTRIBUTION_FAILED",
                "배포 채널이 응답하지 않아 이벤트를 배포하지 못했습니다. 이벤트는 승인 상태로 남아 있으며 다시 배포할 수 있습니다.",
            ),
            ApiError::Issuer(e) => match e {
                E::Forbidden => fixed(StatusCode::FORBIDDEN, "FORBIDDEN", "권한이 없습니다."),
                E::Fields(fields) => (
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    Cow::Owned(format!(
                        "잘못된 요청입니다: {}",
                        fields
                            .iter()
                            .map(|f| format!("{} {}", f.field, f.message))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                ),
                E::NotReady(missing) => (
                    StatusCode::BAD_REQUEST,
                    "CAMPAIGN_NOT_READY",
                    Cow::Owned(format!(
                        "아직 배포할 수 없습니다. 먼저 완료할 단계: {}",
                        missing.join(", ")
                    )),
                ),
                E::Denied(kind, denial) => denied(*kind, *denial),
                E::DuplicateEvent => fixed(
                    StatusCode::CONFLICT,
                    "DUPLICATE_EVENT",
                    "이미 존재하는 이벤트입니다.",
                ),
                E::NotFound(missing) => not_found(*missing),
                E::Refused(refusal) => refused(*refusal),
                E::Invalid(detail) => (
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    Cow::Owned(format!("잘못된 요청입니다: {detail}")),
                ),
                E::Db(db) if issuance_core::error::db_fault(db) == issuance_core::error::DbFault::Input => (
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    Cow::Borrowed("잘못된 요청입니다: 저장할 수 없는 값입니다."),
                ),
                E::Db(db) if issuance_core::error::db_fault(db) == issuance_core::error::DbFault::Bug => {
                    fixed(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "INTERNAL_ERROR",
                        "서버 오류가 발생했습니다.",
                    )
                }
                E::Redis(_)
                | E::Db(_)
                | E::DbDown
                | E::NotReplicated { .. }
                | E::RedisUnfit(_)
                | E::RedisUnsettled => fixed(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "일시적으로 서비스를 이용할 수 없습니다. 잠시 후 다시 시도해주세요.",
                ),
                E::Protocol { .. } => fixed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "서버 오류가 발생했습니다.",
                ),
            },
        }
    }
}

/// The admin seed's not-found codes.
fn not_found(m: issuance_core::error::Missing) -> (StatusCode, &'static str, Cow<'static, str>) {
    use issuance_core::error::Missing as M;
    let (code, message) = match m {
        M::AdminEvent => ("EVENT_NOT_FOUND", "이벤트를 찾을 수 없습니다."),
        M::CouponInventory => ("COUPON_INVENTORY_NOT_FOUND", "쿠폰 재고를 찾을 수 없습니다."),
        M::Inventory => ("INVENTORY_NOT_FOUND", "쿠폰 재고를 찾을 수 없습니다."),
        M::CouponBatch => ("COUPON_BATCH_NOT_FOUND", "쿠폰 회차를 찾을 수 없습니다."),
        M::Batch => ("BATCH_NOT_FOUND", "쿠폰 재고 회차를 찾을 수 없습니다."),
        M::Job => ("JOB_NOT_FOUND", "쿠폰 생성 작업을 찾을 수 없습니다."),
        M::User => ("USER_NOT_FOUND", "사용자를 찾을 수 없습니다."),
        M::Product => ("PRODUCT_NOT_FOUND", "상품을 찾을 수 없습니다."),
        M::Coupon => ("COUPON_NOT_FOUND", "쿠폰을 찾을 수 없습니다."),
        M::TicketEvent => ("EVENT_NOT_FOUND", "존재하지 않는 이벤트입니다."),
        M::Order => ("ORDER_NOT_FOUND", "주문을 찾을 수 없습니다."),
        M::OutboxRecord => ("OUTBOX_EVENT_NOT_FOUND", "이벤트를 찾을 수 없습니다."),
        M::Campaign => ("CAMPAIGN_NOT_FOUND", "이벤트를 찾을 수 없습니다."),
        M::CampaignJob => ("JOB_NOT_FOUND", "작업을 찾을 수 없습니다."),
        M::Image => ("IMAGE_NOT_FOUND", "이미지를 찾을 수 없습니다."),
        M::Queue => ("QUEUE_NOT_FOUND", "대기열이 없는 이벤트입니다."),
        M::QueuePlace => ("QUEUE_PLACE_NOT_FOUND", "대기열에 참여하지 않은 사용자입니다."),
    };
    (StatusCode::NOT_FOUND, code, Cow::Borrowed(message))
}

/// An issue refused, for every scope kind in one table: the same outcome has one shape, named
/// as SPEC §2 (tickets) and §4 (coupons) name it.
fn denied(kind: ScopeKind, denial: Denial) -> (StatusCode, &'static str, Cow<'static, str>) {
    use {Denial as D, ScopeKind as K};
    let (status, code, message) = match (kind, denial) {
        (K::Ticket, D::Inactive) => (
            StatusCode::BAD_REQUEST,
            "EVENT_INACTIVE",
            "비활성화된 이벤트입니다.",
        ),
        (K::Ticket, D::NotInPeriod | D::Expired) => (
            StatusCode::BAD_REQUEST,
            "EVENT_NOT_IN_PERIOD",
            "이벤트 기간이 아닙니다.",
        ),
        (K::Coupon, D::Inactive | D::NotInPeriod) => (
            StatusCode::BAD_REQUEST,
            "COUPON_NOT_IN_PERIOD",
            "쿠폰 발급 기간이 아닙니다.",
        ),
        (K::Coupon, D::Expired) => (StatusCode::BAD_REQUEST, "COUPON_EXPIRED", "만료된 쿠폰입니다."),
        (K::Ticket, D::SoldOut) => (StatusCode::CONFLICT, "SOLD_OUT", "티켓이 모두 소진되었습니다."),
        (K::Coupon, D::SoldOut) => (
            StatusCode::CONFLICT,
            "COUPON_SOLD_OUT",
            "쿠폰이 모두 소진되었습니다.",
        ),
        (_, D::DailyLimit) => (
            StatusCode::CONFLICT,
            "DAILY_LIMIT_REACHED",
            "오늘의 발급 한도에 도달했습니다. 내일 다시 시도해주세요.",
        ),
        (K::Coupon, D::Held(_)) => (
            StatusCode::CONFLICT,
            "COUPON_ALREADY_ISSUED",
            "이미 발급받은 쿠폰입니다.",
        ),
        (_, D::AdmissionRequired) => (
            StatusCode::FORBIDDEN,
            "ADMISSION_REQUIRED",
            "대기열을 통과한 입장권이 필요합니다.",
        ),
        (_, D::AdmissionInvalid) => (
            StatusCode::FORBIDDEN,
            "ADMISSION_INVALID",
            "유효하지 않거나 만료된 입장권입니다.",
        ),
        // A ticket's holder gets the ticket back (200); this row is never answered.
        (K::Ticket, D::Held(_)) => (StatusCode::CONFLICT, "ALREADY_ISSUED", "이미 발급받았습니다."),
    };
    (status, code, Cow::Borrowed(message))
}

/// The rule codes (admin seed, coupons, points). The admin seed's `498` for a duplicate job is
/// not an HTTP status; it is answered 409. A refusal that depends on the input alone is 400; one
/// that depends on the current state (sold out, a cap reached) is 409.
fn refused(r: issuance_core::error::Refusal) -> (StatusCode, &'static str, Cow<'static, str>) {
    use issuance_core::error::Refusal as R;
    let (status, code, message) = match r {
        R::InvalidDatetime => (
            StatusCode::BAD_REQUEST,
            "INVALID_DATETIME",
            "시작 시간은 종료 시간보다 이전이어야 합니다.",
        ),
        R::EventInvalidDatetime => (
            StatusCode::BAD_REQUEST,
            "EVENT_INVALID_DATETIME",
            "이벤트 시작 시간은 종료 시간보다 이전이어야 합니다.",
        ),
        R::DuplicateEventName => (
            StatusCode::CONFLICT,
            "DUPLICATE_EVENT",
            "동일한 이름의 이벤트가 이미 실행 중입니다.",
        ),
        R::InvalidStatusTransition => (
            StatusCode::BAD_REQUEST,
            "INVALID_STATUS_TRANSITION",
            "허용되지 않는 상태 변경입니다.",
        ),
        R::CannotModifyEvent => (
            StatusCode::BAD_REQUEST,
            "CANNOT_MODIFY_EVENT",
            "종료되었거나 비활성화된 이벤트는 수정할 수 없습니다.",
        ),
        R::CannotDeleteEvent => (
            StatusCode::BAD_REQUEST,
            "CANNOT_DELETE_EVENT",
            "해당 이벤트는 삭제할 수 없습니다.",
        ),
        R::MaxCouponLimitExceeded => (
            StatusCode::BAD_REQUEST,
            "MAX_COUPON_LIMIT_EXCEEDED",
            "생성 가능한 최대 쿠폰 수를 초과했습니다.",
        ),
        R::InventoryInvalidPeriod => (
            StatusCode::BAD_REQUEST,
            "INVENTORY_INVALID_PERIOD",
            "쿠폰 유효기간의 시작 시간은 종료 시간보다 이전이어야 합니다.",
        ),
        R::CannotModifyInventory => (
            StatusCode::BAD_REQUEST,
            "CANNOT_MODIFY_COUPON_INVENTORY",
            "해당 쿠폰 재고는 수정할 수 없습니다.",
        ),
        R::CannotDeleteInventory => (
            StatusCode::BAD_REQUEST,
            "CANNOT_DELETE_COUPON_INVENTORY",
            "이미 생성된 쿠폰 재고는 삭제할 수 없습니다.",
        ),
        R::BatchInvalidPeriod => (
            StatusCode::BAD_REQUEST,
            "BATCH_INVALID_PERIOD",
            "쿠폰 유효기간의 시작 시간은 종료 시간보다 이전이어야 합니다.",
        ),
        R::CannotModifyBatch => (
            StatusCode::BAD_REQUEST,
            "CANNOT_MODIFY_COUPON_BATCH",
            "해당 회차는 수정할 수 없습니다.",
        ),
        R::DuplicateBatchJob => (
            StatusCode::CONFLICT,
            "DUPLICATE_BATCH_JOB_REQUEST",
            "이미 실행 중인 쿠폰 생성작업이 존재합니다.",
        ),
        R::CouponsAlreadyGenerated => (
            StatusCode::CONFLICT,
            "COUPONS_ALREADY_GENERATED",
            "이미 쿠폰이 생성된 회차입니다.",
        ),
        R::BatchNotMapped => (
            StatusCode::BAD_REQUEST,
            "BATCH_NOT_MAPPED",
            "제휴사 쿠폰은 MAPPED 회차에만 업로드할 수 있습니다.",
        ),
        R::CannotCancelJob => (
            StatusCode::CONFLICT,
            "CANNOT_CANCEL_JOB",
            "이미 끝난 작업은 취소할 수 없습니다.",
        ),
        // The same outcome as an issue of an expired batch: one row of the table.
        R::CouponExpired => return denied(ScopeKind::Coupon, Denial::Expired),
        R::InvalidAmount => (
            StatusCode::BAD_REQUEST,
            "INVALID_AMOUNT",
            "충전 금액은 1원 이상 1,000,000원 이하여야 합니다.",
        ),
        R::PointLimitExceeded => (
            StatusCode::CONFLICT,
            "POINT_LIMIT_EXCEEDED",
            "보유 가능한 최대 포인트(5,000,000원)를 초과합니다.",
        ),
        R::OutOfStock => (StatusCode::CONFLICT, "OUT_OF_STOCK", "재고가 부족합니다."),
        R::CouponInvalid => (
            StatusCode::BAD_REQUEST,
            "COUPON_INVALID",
            "사용할 수 없는 쿠폰입니다.",
        ),
        R::CouponAlreadyUsed => (
            StatusCode::CONFLICT,
            "COUPON_ALREADY_USED",
            "이미 사용된 쿠폰입니다.",
        ),
        R::WalletInsufficientBalance => (
            StatusCode::CONFLICT,
            "WALLET_INSUFFICIENT_BALANCE",
            "잔액이 부족합니다.",
        ),
        R::OrderExpired => (
            StatusCode::CONFLICT,
            "ORDER_EXPIRED",
            "결제 기한이 지난 주문입니다.",
        ),
        R::OrderAlreadyPaid => (
            StatusCode::CONFLICT,
            "ORDER_ALREADY_PAID",
            "이미 결제된 주문입니다.",
        ),
        R::OutboxNotDead => (
            StatusCode::CONFLICT,
            "OUTBOX_NOT_DEAD",
            "전송 실패(DEAD) 상태의 이벤트만 재전송할 수 있습니다.",
        ),
        R::CampaignNotEditable => (
            StatusCode::CONFLICT,
            "CAMPAIGN_NOT_EDITABLE",
            "이미 발행되었거나 종료된 이벤트는 바꿀 수 없습니다.",
        ),
        R::RecommendationNotReady => (
            StatusCode::CONFLICT,
            "RECOMMENDATION_NOT_READY",
            "이 이벤트의 완료된 추천 작업이 아닙니다.",
        ),
        R::PublishInProgress => (
            StatusCode::CONFLICT,
            "PUBLISH_IN_PROGRESS",
            "이 이벤트를 배포하는 중입니다. 잠시 후 다시 시도해주세요.",
        ),
        R::ImageNotGenerated => (
            StatusCode::BAD_REQUEST,
            "INVALID_IMAGE_URL",
            "이 이벤트를 위해 생성된 이미지의 URL이 아닙니다.",
        ),
        R::QueueNotOpen => (
            StatusCode::BAD_REQUEST,
            "QUEUE_NOT_OPEN",
            "대기열이 아직 열리지 않았습니다.",
        ),
        R::QueueClosed => (StatusCode::CONFLICT, "QUEUE_CLOSED", "대기열이 닫혔습니다."),
        R::SeedNotRevealed => (
            StatusCode::FORBIDDEN,
            "SEED_NOT_REVEALED",
            "대기열 순서의 시드는 시작 시각 이후에 공개됩니다.",
        ),
        R::QuantityBelowIssued => (
            StatusCode::CONFLICT,
            "QUANTITY_BELOW_ISSUED",
            "이미 발급된 수량보다 적게 줄일 수 없습니다.",
        ),
    };
    (status, code, Cow::Borrowed(message))
}

impl IntoResponse for ApiError {
    /// The answer to the request whose URI [`with_uri`] keeps (an empty path outside it).
    fn into_response(self) -> Response {
        match REQUEST_URI.try_with(Uri::clone) {
            Ok(uri) => self.answer_at(uri.path()),
            Err(_) => self.answer_at(""),
        }
    }
}

impl ApiError {
    /// This error's answer to a request for `path`.
    pub(crate) fn answer_at(self, path: &str) -> Response {
        let (status, code, message) = self.parts();
        // Shedding and timeouts are the bounds working, not failures to log one by one (they
        // are counted).
        let cause = (status.is_server_error() && !matches!(self, ApiError::Overloaded | ApiError::Timeout))
            .then(|| self.to_string());
        let details = match &self {
            ApiError::Issuer(issuance_core::Error::Denied(_, Denial::Held(id))) => {
                let mut m = serde_json::Map::new();
                m.insert("couponIssueId".into(), (*id).into());
                Some(m)
            }
            ApiError::Issuer(issuance_core::Error::Fields(fields)) => {
                let list = fields
                    .iter()
                    .map(|f| serde_json::json!({"field": f.field, "message": f.message}))
                    .collect();
                let mut m = serde_json::Map::new();
                m.insert("fieldErrors".into(), serde_json::Value::Array(list));
                Some(m)
            }
            ApiError::Issuer(issuance_core::Error::NotReady(missing)) => {
                let mut m = serde_json::Map::new();
                m.insert("missing".into(), serde_json::json!(missing));
                Some(m)
            }
            ApiError::DistributionFailed(results) => {
                let mut m = serde_json::Map::new();
                m.insert(
                    "distributionResults".into(),
                    serde_json::Value::Array(results.clone()),
                );
                Some(m)
            }
            _ => None,
        };
        let body = |path: &str| {
            if let Some(cause) = &cause {
                tracing::error!(path, code, cause, "request failed");
            }
            match (&message, &details) {
                (Cow::Borrowed(message), None) => fixed_body(status, code, message, path),
                _ => Bytes::from(write_body(status, code, &message, path, details.as_ref())),
            }
        };
        let mut response = json_response(status, body(path));
        // Every 503 is temporary by definition: tell clients when to come back.
        let retry_after = match self {
            ApiError::RateLimited(secs) => Some(secs.max(1)),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The SPEC §1 body, written field by field in [`ErrorBody`]'s order (the test
/// `the_body_is_what_serde_writes` holds the two together).
// The message's `Cow` tells a fixed message (`&'static`, its middle memoised) from a written one.
#[allow(clippy::ptr_arg)]
fn write_body(
    status: StatusCode,
    code: &'static str,
    message: &Cow<'static, str>,
    path: &str,
    details: Option<&serde_json::Map<String, serde_json::Value>>,
) -> String {
    write_body_at(clock::now_ms(), status, code, message, path, details)
}

/// [`write_body`] with its timestamp at epoch ms `at` (`None`: read the clock as chrono does).
#[allow(clippy::ptr_arg)]
fn write_body_at(
    at: Option<i64>,
    status: StatusCode,
    code: &'static str,
    message: &Cow<'static, str>,
    path: &str,
    details: Option<&serde_json::Map<String, serde_json::Value>>,
) -> String {
    let mut out = String::with_capacity(160 + message.len() + path.len());
    out.push_str("{\"timestamp\":\"");
    match at {
        Some(ms) => clock::push_kst_ms(&mut out, ms),
        None => clock::push_now_kst_ms(&mut out),
    }
    match message {
        Cow::Borrowed(message) => push_fixed_middle(&mut out, status, code, message),
        Cow::Owned(message) => write_middle(&mut out, status, code, message),
    }
    out.push_str(",\"path\":");
    push_json_str(&mut out, path);
    for (name, value) in details.into_iter().flatten() {
        out.push(',');
        push_json_str(&mut out, name);
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

/// The body of a fixed answer (a `&'static` message, no details) to `path`, kept per thread
/// while the same answer to the same path repeats within one millisecond: in a flood of one
/// answer (the sold-out 409s) each process writes several a millisecond, every one the same
/// bytes, and each after the first is the kept body's handle (about 600 instructions less).
fn fixed_body(status: StatusCode, code: &'static str, message: &'static str, path: &str) -> Bytes {
    thread_local! {
        static LAST: std::cell::RefCell<((FixedKey, i64), String, Bytes)> =
            const { std::cell::RefCell::new((((0, 0, 0, 0, 0), -1), String::new(), Bytes::new())) };
    }
    let write = |at: Option<i64>| {
        Bytes::from(write_body_at(
            at,
            status,
            code,
            &Cow::Borrowed(message),
            path,
            None,
        ))
    };
    let Some(ms) = clock::now_ms() else {
        return write(None);
    };
    let key = (fixed_key(status, code, message), ms);
    LAST.with_borrow_mut(|(last, last_path, body)| {
        if *last != key || last_path != path {
            *body = write(Some(ms));
            *last = key;
            last_path.clear();
            last_path.push_str(path);
        }
        body.clone()
    })
}

/// What tells one fixed answer from another: its status and where its `&'static` code and
/// message are, which no other text can share.
type FixedKey = (u16, usize, usize, usize, usize);

fn fixed_key(status: StatusCode, code: &'static str, message: &'static str) -> FixedKey {
    (
        status.as_u16(),
        code.as_ptr() as usize,
        code.len(),
        message.as_ptr() as usize,
        message.len(),
    )
}

/// [`write_middle`] of a fixed message, written once per thread for as long as the same one
/// follows: a flood of one answer (the sold-out 409s) escapes its Korean message once.
fn push_fixed_middle(out: &mut String, status: StatusCode, code: &'static str, message: &'static str) {
    thread_local! {
        static LAST: std::cell::RefCell<(FixedKey, String)> = const { std::cell::RefCell::new(((0, 0, 0, 0, 0), String::new())) };
    }
    let key = fixed_key(status, code, message);
    LAST.with_borrow_mut(|(last, middle)| {
        if *last != key {
            middle.clear();
            write_middle(middle, status, code, message);
            *last = key;
        }
        out.push_str(middle);
    });
}

/// The body's fields between the timestamp and the path.
fn write_middle(out: &mut String, status: StatusCode, code: &str, message: &str) {
    out.push_str("\",\"status\":");
    out.push_str(status.as_str());
    out.push_str(",\"statusCode\":");
    out.push_str(status.as_str());
    out.push_str(",\"error\":");
    push_json_str(out, status.canonical_reason().unwrap_or("Error"));
    out.push_str(",\"code\":");
    push_json_str(out, code);
    out.push_str(",\"message\":");
    push_json_str(out, message);
}

/// A response of JSON written by hand (error bodies, the ticket answer).
pub fn json_response(status: StatusCode, json: impl Into<Bytes>) -> Response {
    // Built directly: through `(status, [header], json).into_response()` the content type was
    // inserted twice, `text/plain` first.
    let mut response = Response::new(axum::body::Body::from(json.into()));
    *response.status_mut() = status;
    // Room for the one header: a map's first insert otherwise makes room for six.
    let headers = response.headers_mut();
    *headers = axum::http::HeaderMap::with_capacity(1);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Whether `text` holds a byte JSON escapes inside a string: a control character, `"` or `\`.
fn needs_escape(text: &str) -> bool {
    !issuance_core::text::every_byte(text, |b| (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

/// `text` as a JSON string. Most texts here (codes, the Korean messages, paths) hold nothing to
/// escape and are copied as they are; the rest go through serde_json.
pub fn push_json_str(out: &mut String, text: &str) {
    if needs_escape(text) {
        out.push_str(&serde_json::Value::from(text).to_string());
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::InvalidRequest(r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else if is_body_timeout(&r) {
            ApiError::BodyTimeout
        } else {
            ApiError::InvalidRequest(r.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::InvalidRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::InvalidRequest(r.body_text())
    }
}

/// The body of every error (SPEC §1). Some codes add fields: `COUPON_ALREADY_ISSUED` adds the
/// held coupon's `couponIssueId`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody<'a> {
    /// When it happened (KST, `+09:00`).
    #[schema(example = "2026-11-24T10:00:00.123+09:00")]
    timestamp: String,
    /// The HTTP status.
    #[schema(example = 409)]
    status: u16,
    /// The HTTP status again (the seeds use both names).
    #[schema(example = 409)]
    status_code: u16,
    /// The status's reason phrase.
    #[schema(example = "Conflict")]
    error: &'a str,
    /// The stable error code.
    #[schema(example = "SOLD_OUT")]
    code: &'a str,
    /// A message for people (Korean).
    message: &'a str,
    /// The request path.
    path: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `future`, run with `uri` at hand for [`ApiError::into_response`] (see the module doc).
pub(crate) fn with_uri<F: std::future::Future>(uri: Uri, future: F) -> TaskLocalFuture<Uri, F> {
    REQUEST_URI.scope(uri, future)
}

/// The fallback of unknown routes.
pub async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// The error a body reports once its deadline passed; [`ApiError`] turns it into `408`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether an error (a body read's) comes from [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(error);
    while let Some(e) = cur {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_body_is_kept_only_for_the_same_answer_to_the_same_path() {
        static FIRST: &str = "첫 번째";
        static SECOND: &str = "second";
        let (status, code) = (StatusCode::CONFLICT, "SOLD_OUT");
        let read = |message: &'static str, path: &str| -> serde_json::Value {
            serde_json::from_slice(&fixed_body(status, code, message, path)).unwrap()
        };
        let a = read(FIRST, "/events/x/tickets");
        assert_eq!(
            (a["message"].as_str(), a["path"].as_str()),
            (Some(FIRST), Some("/events/x/tickets"))
        );
        let b = read(FIRST, "/events/y/tickets");
        assert_eq!(b["path"], "/events/y/tickets");
        let c = read(SECOND, "/events/y/tickets");
        assert_eq!(c["message"], SECOND);
        let d = fixed_body(StatusCode::NOT_FOUND, "NOT_FOUND", SECOND, "/events/y/tickets");
        assert!(std::str::from_utf8(&d).unwrap().contains("\"status\":404"));
        // Within one millisecond the same answer is the same bytes, not written again.
        loop {
            let first = fixed_body(status, code, FIRST, "/p");
            let second = fixed_body(status, code, FIRST, "/p");
            if first == second {
                assert_eq!(first.as_ptr(), second.as_ptr());
                break;
            }
        }
    }

    #[test]
    fn a_text_needs_an_escape_exactly_when_serde_escapes_it() {
        for c in (0u8..0x80).map(char::from).chain(['é', '한', '\u{2028}']) {
            let text = format!("a long enough text to be checked in vectors {c} and after");
            let serde = serde_json::Value::from(text.as_str()).to_string();
            assert_eq!(needs_escape(&text), serde != format!("\"{text}\""), "{c:?}");
        }
    }

    /// What serde writes for the same body, with the timestamp of `written`.
    fn by_serde(
        written: &str,
        status: StatusCode,
        code: &str,
        message: &str,
        path: &str,
        details: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> String {
        let parsed: serde_json::Value = serde_json::from_str(written).expect("the body is JSON");
        let body = ErrorBody {
            timestamp: parsed["timestamp"].as_str().expect("a timestamp").to_owned(),
            status: status.as_u16(),
            status_code: status.as_u16(),
            error: status.canonical_reason().unwrap_or("Error"),
            code,
            message,
            path,
            details,
        };
        serde_json::to_string(&body).expect("serializable")
    }

    #[test]
    fn the_body_is_what_serde_writes() {
        let mut held = serde_json::Map::new();
        held.insert("couponIssueId".into(), 10_000_003.into());
        let cases = [
            (
                StatusCode::CONFLICT,
                "SOLD_OUT",
                "티켓이 모두 소진되었습니다.",
                "/events/a-1/tickets",
                None,
            ),
            (
                StatusCode::CONFLICT,
                "COUPON_ALREADY_ISSUED",
                "이미 발급받은 쿠폰입니다.",
                "/api/v1/coupons/1/issue",
                Some(held),
            ),
            (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "잘못된 요청입니다: \"x\" \\ \n\t\u{1}",
                "/a\"b\\c",
                None,
            ),
            (StatusCode::from_u16(599).unwrap(), "X", "", "", None),
        ];
        // Each fixed message twice in a row (the second from the thread's memo), then as an
        // owned text; the cases in turn replace each other's memo.
        for (status, code, message, path, details) in cases {
            for message in [
                Cow::Borrowed(message),
                Cow::Borrowed(message),
                Cow::Owned(message.to_owned()),
            ] {
                let written = write_body(status, code, &message, path, details.as_ref());
                assert_eq!(
                    written,
                    by_serde(&written, status, code, &message, path, details.clone()),
                    "{code}"
                );
            }
        }
    }
}
