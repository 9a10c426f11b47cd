//! Tickets: `POST /events/{eventKey}/tickets` (the hot path) and `GET /users/{userId}/tickets`.

use axum::{Json, extract::State, http::StatusCode, response::Response};
use engine::tickets::{Issued, Ticket};
use issuance_core::{
    clock,
    error::ScopeKind,
    ids::{EventKey, UserId},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::{ApiError, ErrorBody, json_response},
    extract::{AdmissionPass, AppJson, AppPath, AuthUser},
    routes::events::path_key,
    state::AppState,
    telemetry::{count_issue, issue_outcome},
};

/// `POST /events/{eventKey}/tickets` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"userId": 7}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueTicket {
    #[schema(minimum = 1)]
    user_id: i64,
}

impl crate::extract::UserBody for IssueTicket {
    fn of_user(user_id: i64) -> Self {
        Self { user_id }
    }
}

/// A ticket, as the issue endpoint answers it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    ticket_id: String,
    user_id: i64,
    event_key: String,
    #[schema(format = DateTime)]
    issued_at: String,
}

/// A ticket in a user's list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserTicketView {
    ticket_id: String,
    event_key: String,
    event_name: String,
    #[schema(format = DateTime)]
    issued_at: String,
}

/// Issues a ticket: 201 with a new one, 200 with the one the user already holds.
#[utoipa::path(
    post, path = "/events/{eventKey}/tickets", tag = "tickets", request_body = IssueTicket,
    params(
        ("eventKey" = String, Path, description = "The event's key"),
        ("X-Admission-Pass" = Option<String>, Header, description = "The pass the event's waiting room gave this user, when the room is on"),
    ),
    responses(
        (status = 201, description = "A new ticket", body = TicketView),
        (status = 200, description = "The ticket the user already holds", body = TicketView),
        (status = 403, description = "`ADMISSION_REQUIRED`, `ADMISSION_INVALID`: the event's waiting room is on and the request has no valid pass of this user's (`X-Admission-Pass`)", body = ErrorBody),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`SOLD_OUT`, `DAILY_LIMIT_REACHED`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn issue(
    State(st): State<AppState>,
    auth: AuthUser,
    AdmissionPass(pass): AdmissionPass,
    AppPath(key): AppPath<String>,
    AppJson(body): AppJson<IssueTicket>,
) -> Result<Response, ApiError> {
    issue_for(&st, auth, pass, &key, body).await
}

/// [`issue`] once its request is read: also the answer of the route served before the router
/// (see [`crate::hot`]).
pub(crate) async fn issue_for(
    st: &AppState,
    auth: AuthUser,
    pass: Option<String>,
    key: &str,
    body: IssueTicket,
) -> Result<Response, ApiError> {
    let user = UserId::new(body.user_id)?;
    auth.act_for(user.get())?;
    if let Err(wait) = st.limits.check(user.get()) {
        count_issue(ScopeKind::Ticket, "rate_limited");
        return Err(ApiError::RateLimited(wait));
    }
    let result = st
        .engine
        .issue_ticket_with_pass(&hot_key(key)?, user, pass.as_deref())
        .await;
    count_issue(ScopeKind::Ticket, issue_outcome(&result, |i: &Issued| i.fresh));
    let issued = result?;
    let status = if issued.fresh {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, ticket_json(&issued.ticket)))
}

/// The event key `raw` of an issue request's path, as [`path_key`] reads it. The last one read on
/// this thread is kept and handed out again while requests name it: a rush names one event, and
/// a key of its own cost each request an allocation.
fn hot_key(raw: &str) -> Result<EventKey, ApiError> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<EventKey>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some(key) if key.as_str() == raw => Ok(key.clone()),
        _ => {
            let key = path_key(raw)?;
            *last = Some(key.clone());
            Ok(key)
        }
    })
}

/// A [`TicketView`] as JSON, written directly: the answer of every issue request, where serde
/// with the view's three intermediate strings cost about two thousand instructions (the test
/// `the_answer_is_what_serde_writes` holds the two together).
fn ticket_json(t: &Ticket) -> String {
    let mut user = itoa::Buffer::new();
    let user = user.format(t.user_id);
    let key = t.event_key.as_str();
    // Exactly the answer's length for a key with nothing to escape (the test
    // `the_answer_fills_its_room` holds it): `Bytes::from` then takes the text as it is, where a
    // text with room to spare costs another allocation.
    let mut out = String::with_capacity(TICKET_JSON_LEN + user.len() + key.len());
    out.push_str("{\"ticketId\":\"");
    out.push_str(
        t.ticket_id
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    );
    out.push_str("\",\"userId\":");
    out.push_str(user);
    // An event key is of a-z, 0-9 and '-' only ([`EventKey::parse`]): nothing to escape.
    out.push_str(",\"eventKey\":\"");
    out.push_str(key);
    out.push_str("\",\"issuedAt\":\"");
    clock::push_utc(&mut out, t.issued_at);
    out.push_str("\"}");
    out
}

/// The length of [`ticket_json`]'s text but the user's digits and the key's: its literal parts,
/// the UUID (36) and the time in milliseconds (24).
const TICKET_JSON_LEN: usize = 13 + 36 + 11 + 13 + 14 + 24 + 2;

/// A user's tickets, newest first (the user or an admin).
#[utoipa::path(
    get, path = "/users/{userId}/tickets", tag = "tickets",
    params(("userId" = i64, Path, minimum = 1, description = "The user")),
    responses((status = 200, description = "The user's tickets, newest first", body = Vec<UserTicketView>))
)]
pub async fn list_for_user(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(user_id): AppPath<i64>,
) -> Result<Json<Vec<UserTicketView>>, ApiError> {
    let user = UserId::new(user_id)?;
    auth.act_for(user.get())?;
    let tickets = store::tickets::list_for_user(st.engine.db(), user.get()).await?;
    Ok(Json(
        tickets
            .into_iter()
            .map(|t| UserTicketView {
                ticket_id: t.ticket_id.to_string(),
                event_key: t.event_key,
                event_name: t.event_name,
                issued_at: clock::format_utc(t.issued_at),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_key_is_the_one_the_path_names() {
        for raw in ["summer", "winter", "summer", "summer"] {
            assert_eq!(hot_key(raw).unwrap().as_str(), raw);
        }
        hot_key("summer").unwrap();
        assert!(
            hot_key("Summer").is_err(),
            "a key kept is no licence for another spelling"
        );
        assert!(hot_key("summer\"").is_err());
    }

    #[test]
    fn an_event_key_needs_no_escaping() {
        // What the answer relies on to write the key as it is.
        for b in 0..=u8::MAX {
            let text = (b as char).to_string();
            if EventKey::parse(&text).is_ok() {
                assert_eq!(serde_json::to_string(&text).unwrap(), format!("\"{text}\""));
            }
        }
    }

    #[test]
    fn the_answer_is_what_serde_writes() {
        for (at_ms, user_id) in [(1_768_014_000_123, 7), (1_768_014_000_000, i64::MAX)] {
            let t = Ticket {
                ticket_id: uuid::Uuid::now_v7(),
                user_id,
                event_key: EventKey::parse("golden-2026-summer").unwrap(),
                issued_at: clock::from_ms(at_ms),
            };
            let view = TicketView {
                ticket_id: t.ticket_id.to_string(),
                user_id: t.user_id,
                event_key: t.event_key.to_string(),
                issued_at: clock::format_utc(t.issued_at),
            };
            assert_eq!(ticket_json(&t), serde_json::to_string(&view).unwrap());
        }
    }

    #[test]
    fn the_answer_fills_its_room() {
        for (key, user_id) in [("golden-2026-summer", 7), ("e", i64::MAX)] {
            let t = Ticket {
                ticket_id: uuid::Uuid::now_v7(),
                user_id,
                event_key: EventKey::parse(key).unwrap(),
                issued_at: clock::from_ms(1_768_014_000_123),
            };
            let json = ticket_json(&t);
            assert_eq!(json.len(), json.capacity(), "{json}");
        }
    }
}
