//! First-come coupons: `POST /api/v1/coupons/{couponId}/issue` (the hot path, like tickets) and a
//! user's coupons (`GET /api/v1/users/{userId}/coupons`, alias `GET /api/v1/coupons?userId=`).

use axum::{Json, body::Bytes, extract::State, http::StatusCode, response::Response};
use engine::coupons::IssuedCoupon;
use issuance_core::{
    clock,
    code_generator::CODE_LEN,
    discount::{Discount, DiscountType},
    enums::CouponStatus,
    error::ScopeKind,
    ids::UserId,
};
use serde::{Deserialize, Serialize};
use shop::coupons::{Unusable, UserCoupon};
use utoipa::{IntoParams, ToSchema};

use crate::params::kst;
use crate::{
    error::{ApiError, ErrorBody, json_response},
    extract::{AdmissionPass, AppJson, AppPath, AppQuery, AuthUser},
    state::AppState,
    telemetry::{count_issue, issue_outcome},
};

/// `POST /api/v1/coupons/{couponId}/issue` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"userId": 7}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueBody {
    #[schema(minimum = 1)]
    user_id: i64,
}

impl crate::extract::UserBody for IssueBody {
    fn of_user(user_id: i64) -> Self {
        Self { user_id }
    }
}

/// A coupon just issued.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedView {
    coupon_issue_id: i64,
    coupon_id: i64,
    user_id: i64,
    status: CouponStatus,
    code: String,
    discount: Option<Discount>,
    #[schema(format = DateTime)]
    expires_at: String,
    #[schema(format = DateTime)]
    issued_at: String,
}

impl From<IssuedCoupon> for IssuedView {
    fn from(c: IssuedCoupon) -> Self {
        Self {
            coupon_issue_id: c.coupon_issue_id,
            coupon_id: c.batch_id,
            user_id: c.user_id,
            status: CouponStatus::Issued,
            code: c.code.into(),
            discount: c.discount,
            expires_at: kst(c.expires_at),
            issued_at: kst(c.issued_at),
        }
    }
}

/// Issues a coupon of a SELF batch: 201, or 409 COUPON_ALREADY_ISSUED with the held one's id.
#[utoipa::path(
    post, path = "/api/v1/coupons/{couponId}/issue", tag = "coupons", request_body = IssueBody,
    params(
        ("couponId" = i64, Path, minimum = 1, description = "The coupon (a SELF batch's id)"),
        ("X-Admission-Pass" = Option<String>, Header, description = "The pass the batch's waiting room gave this user, when the room is on"),
    ),
    responses(
        (status = 201, description = "Issued", body = IssuedView),
        (status = 404, description = "`COUPON_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`COUPON_SOLD_OUT`, `DAILY_LIMIT_REACHED`, `COUPON_ALREADY_ISSUED` (with `couponIssueId`)", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`, `ADMISSION_INVALID`: the batch's waiting room is on and the request has no valid pass of this user's (`X-Admission-Pass`)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn issue(
    State(st): State<AppState>,
    auth: AuthUser,
    AdmissionPass(pass): AdmissionPass,
    AppPath(coupon_id): AppPath<i64>,
    AppJson(body): AppJson<IssueBody>,
) -> Result<Response, ApiError> {
    issue_for(&st, auth, pass, coupon_id, body).await
}

/// [`issue`] once its request is read: also the answer of the route served before the router
/// (see [`crate::hot`]).
pub(crate) async fn issue_for(
    st: &AppState,
    auth: AuthUser,
    pass: Option<String>,
    coupon_id: i64,
    body: IssueBody,
) -> Result<Response, ApiError> {
    let user = UserId::new(body.user_id)?;
    auth.act_for(user.get())?;
    if coupon_id <= 0 {
        return Err(ApiError::InvalidRequest(
            "couponId must be a positive number".into(),
        ));
    }
    if let Err(wait) = st.limits.check(user.get()) {
        count_issue(ScopeKind::Coupon, "rate_limited");
        return Err(ApiError::RateLimited(wait));
    }
    let result = st
        .engine
        .issue_coupon_with_pass(coupon_id, user, pass.as_deref())
        .await;
    count_issue(ScopeKind::Coupon, issue_outcome(&result, |_| true));
    Ok(json_response(StatusCode::CREATED, coupon_json(&result?)))
}

/// An [`IssuedView`] as JSON, written directly as a ticket's is (the test
/// `the_answer_is_what_serde_writes` holds the two together). What the batch decides is written
/// once per batch on each thread ([`BatchText`]): a rush answers from one batch.
fn coupon_json(c: &IssuedCoupon) -> Bytes {
    thread_local! {
        static LAST: std::cell::RefCell<Option<BatchText>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        let batch = match last {
            Some(batch) if batch.is_of(c) => batch,
            _ => last.insert(BatchText::of(c)),
        };
        let (mut id, mut user) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (id, user) = (id.format(c.coupon_issue_id), user.format(c.user_id));
        // A code is of letters and digits only: nothing to escape.
        const STATUS: &str = ",\"status\":\"ISSUED\",\"code\":\"";
        let mut out = String::with_capacity(
            17 + id.len()
                + batch.middle.len()
                + user.len()
                + STATUS.len()
                + CODE_LEN
                + batch.tail.len()
                + MAX_TIME_LEN
                + 2,
        );
        out.push_str("{\"couponIssueId\":");
        out.push_str(id);
        out.push_str(&batch.middle);
        out.push_str(user);
        out.push_str(STATUS);
        out.push_str(c.code.as_str());
        out.push_str(&batch.tail);
        clock::push_kst(&mut out, c.issued_at);
        out.push_str("\"}");
        // The text gives back its room to spare before it becomes the body: `Bytes` takes a
        // text that fills its room as it is, and one with room left costs another allocation.
        // The allocator shrinks a block in place.
        Bytes::from(out.into_boxed_str().into_boxed_bytes())
    })
}

/// The longest time [`clock::push_kst`] writes of an instant in whole milliseconds.
const MAX_TIME_LEN: usize = "2026-01-01T00:00:00.000+09:00".len();

/// The parts of a coupon's answer that its batch decides, as text: between the coupon's id and
/// its holder, and between its code and the time it was issued.
struct BatchText {
    batch_id: i64,
    discount: Option<Discount>,
    expires_at: chrono::DateTime<chrono::Utc>,
    /// `,"couponId":…,"userId":`
    middle: String,
    /// `","discount":…,"expiresAt":"…","issuedAt":"`
    tail: String,
}

impl BatchText {
    fn of(c: &IssuedCoupon) -> Self {
        let mut number = itoa::Buffer::new();
        let mut middle = String::from(",\"couponId\":");
        middle.push_str(number.format(c.batch_id));
        middle.push_str(",\"userId\":");
        let mut tail = String::from("\",\"discount\":");
        match &c.discount {
            Some(discount) => {
                tail.push_str("{\"type\":\"");
                tail.push_str(match discount.kind {
                    DiscountType::Percent => "PERCENT",
                    DiscountType::Amount => "AMOUNT",
                });
                tail.push_str("\",\"value\":");
                tail.push_str(number.format(discount.value));
                tail.push_str(",\"maxDiscount\":");
                match discount.max_discount {
                    Some(max) => tail.push_str(number.format(max)),
                    None => tail.push_str("null"),
                }
                tail.push('}');
            }
            None => tail.push_str("null"),
        }
        tail.push_str(",\"expiresAt\":\"");
        clock::push_kst(&mut tail, c.expires_at);
        tail.push_str("\",\"issuedAt\":\"");
        Self {
            batch_id: c.batch_id,
            discount: c.discount,
            expires_at: c.expires_at,
            middle,
            tail,
        }
    }

    /// Whether these are the parts of `c`'s answer.
    fn is_of(&self, c: &IssuedCoupon) -> bool {
        self.batch_id == c.batch_id && self.discount == c.discount && self.expires_at == c.expires_at
    }
}

/// `?status=` of a user's coupons.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<CouponStatus>,
}

/// `GET /api/v1/coupons?userId=&status=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AliasQuery {
    #[param(minimum = 1)]
    user_id: i64,
    #[serde(default)]
    status: Option<CouponStatus>,
}

/// A coupon in a user's list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCouponView {
    coupon_issue_id: i64,
    coupon_id: i64,
    code: String,
    status: CouponStatus,
    discount: Option<Discount>,
    #[schema(format = DateTime)]
    issued_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    usable: bool,
    reason: Option<Unusable>,
}

impl From<UserCoupon> for UserCouponView {
    fn from(c: UserCoupon) -> Self {
        Self {
            coupon_issue_id: c.coupon_issue_id,
            coupon_id: c.batch_id,
            code: c.code,
            status: c.status,
            discount: c.discount,
            issued_at: kst(c.issued_at),
            expires_at: kst(c.expires_at),
            usable: c.unusable.is_none(),
            reason: c.unusable,
        }
    }
}

/// `{items: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct CouponList {
    items: Vec<UserCouponView>,
}

/// A user's coupons, newest first (the user or an admin).
#[utoipa::path(
    get, path = "/api/v1/users/{userId}/coupons", tag = "coupons",
    params(("userId" = i64, Path, minimum = 1, description = "The user"), ListQuery),
    responses((status = 200, description = "The user's coupons, newest first", body = CouponList))
)]
pub async fn list_for_user(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<CouponList>, ApiError> {
    list(&st, &auth, user_id, q.status).await
}

/// The points seed's spelling of [`list_for_user`].
#[utoipa::path(
    get, path = "/api/v1/coupons", tag = "coupons", params(AliasQuery),
    responses((status = 200, description = "The user's coupons, newest first", body = CouponList))
)]
pub async fn list_by_query(
    State(st): State<AppState>,
    auth: AuthUser,
    AppQuery(q): AppQuery<AliasQuery>,
) -> Result<Json<CouponList>, ApiError> {
    list(&st, &auth, q.user_id, q.status).await
}

async fn list(
    st: &AppState,
    auth: &AuthUser,
    user_id: i64,
    status: Option<CouponStatus>,
) -> Result<Json<CouponList>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    let coupons = shop::coupons::user_coupons(&st.engine, user, status).await?;
    Ok(Json(CouponList {
        items: coupons.into_iter().map(Into::into).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use issuance_core::{clock, code_generator::CodeGenerator, discount::DiscountType};

    use super::*;

    #[test]
    fn the_answer_is_what_serde_writes() {
        let discounts = [
            None,
            Some(Discount {
                kind: DiscountType::Amount,
                value: 1_000,
                max_discount: None,
            }),
            Some(Discount {
                kind: DiscountType::Percent,
                value: 10,
                max_discount: Some(5_000),
            }),
        ];
        let codes = CodeGenerator::new("s");
        // Each answer's batch differs from the one before in one part, which the batch's text
        // kept from before must not hide.
        let (one, two) = (1_768_014_000_000, 1_768_014_000_500);
        let cases = [
            (42, discounts[0], one),
            (42, discounts[1], one),
            (42, discounts[2], one),
            (43, discounts[2], one),
            (43, discounts[2], two),
        ];
        for (seq, (batch_id, discount, expires_ms)) in cases.into_iter().enumerate() {
            let c = IssuedCoupon {
                coupon_issue_id: batch_id * 10_000_000 + seq as i64,
                batch_id,
                user_id: i64::MAX,
                code: codes.code(batch_id, seq as u32),
                discount,
                expires_at: clock::from_ms(expires_ms),
                issued_at: clock::from_ms(1_768_014_000_123),
            };
            let view = serde_json::to_string(&IssuedView::from(c.clone())).unwrap();
            assert_eq!(coupon_json(&c), view.as_bytes());
            // Again, with the batch's parts kept from the answer before.
            assert_eq!(coupon_json(&c), view.as_bytes());
        }
    }
}
