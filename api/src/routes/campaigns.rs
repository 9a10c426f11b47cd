//! Marketing campaigns (the event-marketing seed), under `/api/events…` and `/api/jobs/…`:
//! a draft, its recommendation and banner jobs, the chosen recommendation, the edited content,
//! publishing (the prize goes onto the issuance engine), detail, list and dashboard. Every
//! route needs a token; a campaign belongs to its creator (others get 403, admins see all).
//!
//! A path id that is not a UUID cannot name a campaign: 404, like any unknown id.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use campaigns::{
    Campaigns,
    channels::Outcome,
    jobs::JobState,
    lifecycle::SelectedChannel,
    model::{ChoiceInput, EditedContent, Recommendation, StoreInfo, Viewer},
    reads::{Detail, ListOrder, Summary},
};
use chrono::NaiveDate;
use issuance_core::{
    enums::{
        CampaignJobKind, CampaignJobStatus, CampaignObjective, CampaignStatus, ChannelType,
        DistributionStatus, PrizeKind,
    },
    error::Missing,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    error::{ApiError, ErrorBody},
    extract::{AppJson, AppPath, AppQuery, AuthUser},
    params::{keyword, kst},
    state::AppState,
};

fn viewer(auth: &AuthUser) -> Viewer {
    Viewer {
        user_id: auth.0.user_id,
        admin: auth.0.admin,
    }
}

fn campaigns(st: &AppState) -> &Campaigns {
    &st.campaigns
}

fn id(raw: &str, missing: Missing) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| issuance_core::Error::NotFound(missing).into())
}

/// A period of days (KST).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPeriod {
    #[schema(format = Date)]
    start_date: Option<NaiveDate>,
    #[schema(format = Date)]
    end_date: Option<NaiveDate>,
}

fn period(start: Option<NaiveDate>, end: Option<NaiveDate>) -> Option<EventPeriod> {
    (start.is_some() || end.is_some()).then_some(EventPeriod {
        start_date: start,
        end_date: end,
    })
}

// --- create ----------------------------------------------------------------------------------

/// The store (the seed's StoreInfo).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoreInfoRequest {
    /// 매장명.
    #[schema(min_length = 1, max_length = 50)]
    store_name: String,
    /// 업종 (free text).
    #[schema(min_length = 1, max_length = 30)]
    industry: String,
    /// 지역.
    #[schema(min_length = 1, max_length = 50)]
    region: String,
    /// 주소.
    #[schema(max_length = 200)]
    address: Option<String>,
}

/// `POST /api/events/purposes` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"objective": "NEW_CUSTOMER", "storeInfo": {"storeName": "우리동네 카페", "industry": "카페", "region": "서울 강남구", "address": "서울 강남구 테헤란로 1"}}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEventDraftRequest {
    objective: CampaignObjective,
    store_info: StoreInfoRequest,
}

/// A new draft.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDraftResponse {
    event_draft_id: Uuid,
    objective: CampaignObjective,
    status: CampaignStatus,
    #[schema(format = DateTime)]
    created_at: String,
}

/// Chooses an objective and creates a draft (200, as the seed).
#[utoipa::path(
    post, path = "/api/events/purposes", tag = "campaigns", request_body = CreateEventDraftRequest,
    responses(
        (status = 200, description = "The draft", body = EventDraftResponse),
        (status = 400, description = "`INVALID_REQUEST` with `fieldErrors`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`", body = ErrorBody),
    )
)]
pub async fn create_draft(
    State(st): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<CreateEventDraftRequest>,
) -> Result<Json<EventDraftResponse>, ApiError> {
    let store = StoreInfo {
        store_name: body.store_info.store_name,
        industry: body.store_info.industry,
        region: body.store_info.region,
        address: body.store_info.address,
    };
    let row = campaigns(&st)
        .create(viewer(&auth), body.objective, store)
        .await?;
    Ok(Json(EventDraftResponse {
        event_draft_id: row.campaign_id,
        objective: row.objective,
        status: row.status,
        created_at: kst(row.created_at),
    }))
}

// --- jobs ------------------------------------------------------------------------------------

/// A job just queued.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobResponse {
    job_id: Uuid,
    status: CampaignJobStatus,
}

async fn request(
    st: &AppState,
    auth: &AuthUser,
    raw: &str,
    kind: CampaignJobKind,
) -> Result<(StatusCode, Json<JobResponse>), ApiError> {
    let job = campaigns(st)
        .request(viewer(auth), id(raw, Missing::Campaign)?, kind)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobResponse {
            job_id: job.job_id,
            status: job.status,
        }),
    ))
}

/// Asks for three recommendations (a job; poll `GET /api/jobs/{jobId}/status`).
#[utoipa::path(
    post, path = "/api/events/{id}/ai-recommendations", tag = "campaigns",
    params(("id" = String, Path, format = Uuid, description = "The draft")),
    responses(
        (status = 202, description = "Queued", body = JobResponse),
        (status = 403, description = "`FORBIDDEN`: another owner's", body = ErrorBody),
        (status = 404, description = "`CAMPAIGN_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CAMPAIGN_NOT_EDITABLE`: published already", body = ErrorBody),
    )
)]
pub async fn request_recommendations(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(raw): AppPath<String>,
) -> Result<(StatusCode, Json<JobResponse>), ApiError> {
    request(&st, &auth, &raw, CampaignJobKind::Recommendation).await
}

/// Asks for banners in three styles (a job). Needs a chosen recommendation.
#[utoipa::path(
    post, path = "/api/events/{id}/content-generation", tag = "campaigns",
    params(("id" = String, Path, format = Uuid, description = "The draft")),
    responses(
        (status = 202, description = "Queued", body = JobResponse),
        (status = 400, description = "`CAMPAIGN_NOT_READY`: no recommendation chosen yet", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`CAMPAIGN_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CAMPAIGN_NOT_EDITABLE`", body = ErrorBody),
    )
)]
pub async fn request_images(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(raw): AppPath<String>,
) -> Result<(StatusCode, Json<JobResponse>), ApiError> {
    request(&st, &auth, &raw, CampaignJobKind::Images).await
}

/// The three banners of a completed banner job.
#[derive(Serialize, ToSchema)]
pub struct ImageUrls {
    simple: String,
    fancy: String,
    trendy: String,
}

/// A job's state: the seed's AIRecommendationJobResult or ImageGenerationJobResult.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatusResponse {
    job_id: Uuid,
    /// RECOMMENDATION or IMAGES.
    job_type: CampaignJobKind,
    status: CampaignJobStatus,
    /// 0–100.
    progress: i32,
    /// Three, when a recommendation job completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendations: Option<Vec<Recommendation>>,
    /// When a banner job completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    image_urls: Option<ImageUrls>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn job_view(c: &Campaigns, s: JobState) -> JobStatusResponse {
    JobStatusResponse {
        job_id: s.job_id,
        job_type: s.kind,
        status: s.status,
        progress: s.progress,
        recommendations: s.recommendations,
        image_urls: s.images.map(|i| ImageUrls {
            simple: c.image_url(i.simple),
            fancy: c.image_url(i.fancy),
            trendy: c.image_url(i.trendy),
        }),
        error: s.error,
    }
}

/// A recommendation or banner job (poll every 2–3 s).
#[utoipa::path(
    get, path = "/api/jobs/{jobId}/status", tag = "campaigns",
    params(("jobId" = String, Path, format = Uuid, description = "The job")),
    responses(
        (status = 200, description = "Its state", body = JobStatusResponse),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn job_status(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(raw): AppPath<String>,
) -> Result<Json<JobStatusResponse>, ApiError> {
    let c = campaigns(&st);
    let state = c.job(viewer(&auth), id(&raw, Missing::CampaignJob)?).await?;
    Ok(Json(job_view(c, state)))
}

// --- choose ----------------------------------------------------------------------------------

/// `PUT /api/events/drafts/{id}/recommendation` body: one of a completed job's
/// recommendations, optionally edited, and the prize's terms.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"jobId": "0193a0c4-5b1e-7c3a-9a51-3f1c2d4e5f60", "index": 0, "prizeType": "GOLDEN_TICKET", "quantity": 100, "startDate": "2026-12-01", "endDate": "2026-12-31"}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChooseRecommendationRequest {
    /// The recommendation job.
    job_id: Uuid,
    /// Which of its three (0, 1, 2).
    #[schema(minimum = 0, maximum = 2)]
    index: i64,
    /// An edited title.
    #[schema(max_length = 50)]
    title: Option<String>,
    /// An edited prize.
    #[schema(max_length = 100)]
    prize: Option<String>,
    /// GOLDEN_TICKET (default) or COUPON.
    prize_type: Option<PrizeKind>,
    /// How many prizes (default: the recommendation's suggestion).
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: Option<i64>,
    /// First day (KST).
    #[schema(format = Date)]
    start_date: NaiveDate,
    /// Last day (KST), today or later.
    #[schema(format = Date)]
    end_date: NaiveDate,
}

/// Chooses a recommendation and the prize's terms (an addition to the seed, which edits the
/// recommendation without naming the step).
#[utoipa::path(
    put, path = "/api/events/drafts/{id}/recommendation", tag = "campaigns", request_body = ChooseRecommendationRequest,
    params(("id" = String, Path, format = Uuid, description = "The draft")),
    responses(
        (status = 200, description = "The campaign", body = EventDetailResponse),
        (status = 400, description = "`INVALID_REQUEST` with `fieldErrors`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`CAMPAIGN_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CAMPAIGN_NOT_EDITABLE`, `RECOMMENDATION_NOT_READY`", body = ErrorBody),
    )
)]
pub async fn choose(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(raw): AppPath<String>,
    AppJson(body): AppJson<ChooseRecommendationRequest>,
) -> Result<Json<EventDetailResponse>, ApiError> {
    let c = campaigns(&st);
    let campaign = id(&raw, Missing::Campaign)?;
    let input = ChoiceInput {
        job_id: body.job_id,
        index: body.index,
        title: body.title,
        prize: body.prize,
        prize_kind: body.prize_type,
        quantity: body.quantity,
        start_date: body.start_date,
        end_date: body.end_date,
    };
    c.choose(viewer(&auth), campaign, input).await?;
    Ok(Json(detail_view(c, c.detail(viewer(&auth), campaign).await?)))
}

// --- content ---------------------------------------------------------------------------------

/// `PUT /api/events/drafts/{id}/content` body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateContentRequest {
    /// One of the URLs a banner job of this draft returned (or the URL this route returned).
    selected_image_url: String,
    edited_content: EditedContent,
}

/// The saved content.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventContentResponse {
    event_draft_id: Uuid,
    /// The banner drawn again with the edited content (what channels get).
    selected_image_url: String,
    edited_content: EditedContent,
}

/// Saves the chosen banner and its edited texts and colours; the banner is drawn again with them.
#[utoipa::path(
    put, path = "/api/events/drafts/{id}/content", tag = "campaigns", request_body = UpdateContentRequest,
    params(("id" = String, Path, format = Uuid, description = "The draft")),
    responses(
        (status = 200, description = "Saved", body = EventContentResponse),
        (status = 400, description = "`INVALID_REQUEST` with `fieldErrors`, `INVALID_IMAGE_URL`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`CAMPAIGN_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CAMPAIGN_NOT_EDITABLE`", body = ErrorBody),
    )
)]
pub async fn save_content(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(raw): AppPath<String>,
    AppJson(body): AppJson<UpdateContentRequest>,
) -> Result<Json<EventContentResponse>, ApiError> {
    let c = campaigns(&st);
    let saved = c
        .save_content(
            viewer(&auth),
            id(&raw, Missing::Campaign)?,
            &body.selected_image_url,
            body.edited_content,
        )
        .await?;
    Ok(Json(EventContentResponse {
        event_draft_id: saved.campaign.campaign_id,
        selected_image_url: c.image_url(saved.image_id),
        edited_content: saved.content,
    }))
}

/// A banner (PNG). Public: channels and their viewers load it. Banners never change.
#[utoipa::path(
    get, path = "/api/events/images/{imageId}", tag = "campaigns", security(()),
    params(("imageId" = String, Path, format = Uuid, description = "The banner")),
    responses(
        (status = 200, description = "The PNG", content_type = "image/png", body = Vec<u8>),
        (status = 404, description = "`IMAGE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn image(
    State(st): State<AppState>,
    AppPath(raw): AppPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let png = campaigns(&st).image(id(&raw, Missing::Image)?).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        png.as_ref().clone(),
    ))
}

// --- publish ---------------------------------------------------------------------------------

/// A selected channel.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DistributionChannel {
    channel_type: ChannelType,
    /// Channel-specific settings, passed on to the channel.
    #[serde(default)]
    settings: Option<serde_json::Value>,
}

/// `POST /api/events/{id}/publish` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"selectedChannels": [{"channelType": "INSTAGRAM", "settings": {"hashtags": ["카페"]}}, {"channelType": "KAKAO_CHANNEL"}]}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishEventRequest {
    /// At least one.
    #[schema(min_items = 1)]
    selected_channels: Vec<DistributionChannel>,
}

/// A channel's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelDistributionResult {
    channel_type: ChannelType,
    status: DistributionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    distribution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_reach: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl From<&Outcome> for ChannelDistributionResult {
    fn from(o: &Outcome) -> Self {
        Self {
            channel_type: o.channel_type,
            status: o.status,
            distribution_id: o.distribution_id.clone(),
            estimated_reach: o.estimated_reach,
            error: o.error.clone(),
        }
    }
}

/// What publishing did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishEventResponse {
    event_id: Uuid,
    /// ACTIVE: at least one channel holds it.
    status: CampaignStatus,
    distribution_results: Vec<ChannelDistributionResult>,
}

/// Approves the draft — its prize goes onto the issuance engine in the same transaction — and
/// distributes it to the selected channels. 200 ACTIVE when a channel took it (others may
/// have failed: see each result); 503 `DISTRIBUTION_FAILED` when none did (the campaign stays
/// APPROVED with its prize; publishing again retries the channels).
#[utoipa::path(
    post, path = "/api/events/{id}/publish", tag = "campaigns", request_body = PublishEventRequest,
    params(("id" = String, Path, format = Uuid, description = "The draft")),
    responses(
        (status = 200, description = "Published", body = PublishEventResponse),
        (status = 400, description = "`INVALID_REQUEST`, `CAMPAIGN_NOT_READY` (with `missing`)", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`CAMPAIGN_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CAMPAIGN_NOT_EDITABLE`: its period ended; `PUBLISH_IN_PROGRESS`; `DUPLICATE_EVENT`", body = ErrorBody),
        (status = 503, description = "`DISTRIBUTION_FAILED` (with `distributionResults`)", body = ErrorBody),
    )
)]
pub async fn publish(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(raw): AppPath<String>,
    AppJson(body): AppJson<PublishEventRequest>,
) -> Result<Json<PublishEventResponse>, ApiError> {
    let selected = body
        .selected_channels
        .into_iter()
        .map(|c| SelectedChannel {
            channel_type: c.channel_type,
            settings: c.settings.unwrap_or(serde_json::Value::Null),
        })
        .collect();
    let published = campaigns(&st)
        .publish(viewer(&auth), id(&raw, Missing::Campaign)?, selected)
        .await?;
    let results: Vec<ChannelDistributionResult> = published
        .results
        .iter()
        .map(ChannelDistributionResult::from)
        .collect();
    if published.nowhere() {
        return Err(ApiError::DistributionFailed(
            results
                .iter()
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect(),
        ));
    }
    Ok(Json(PublishEventResponse {
        event_id: published.campaign.campaign_id,
        status: published.campaign.status,
        distribution_results: results,
    }))
}

// --- reads -----------------------------------------------------------------------------------

/// A campaign in a list or on the dashboard.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    event_id: Uuid,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<EventPeriod>,
    status: CampaignStatus,
    /// Holders of its prize, live from the engine.
    participant_count: i64,
    /// Times its banners were served.
    view_count: i64,
    /// Estimated ROI (%) of the chosen recommendation.
    #[serde(skip_serializing_if = "Option::is_none")]
    roi: Option<f64>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<Summary> for EventSummary {
    fn from(s: Summary) -> Self {
        Self {
            event_id: s.campaign_id,
            title: s.title,
            period: period(s.start_date, s.end_date),
            status: s.status,
            participant_count: s.participant_count,
            view_count: s.view_count,
            roi: s.roi,
            created_at: kst(s.created_at),
        }
    }
}

/// The dashboard.
#[derive(Serialize, ToSchema)]
pub struct DashboardResponse {
    /// ACTIVE, newest first, at most 5.
    active: Vec<EventSummary>,
    /// APPROVED, at most 5.
    approved: Vec<EventSummary>,
    /// COMPLETED, at most 5.
    completed: Vec<EventSummary>,
}

/// The caller's dashboard (an admin's: everybody's): up to five campaigns per status.
#[utoipa::path(
    get, path = "/api/events/dashboard", tag = "campaigns",
    responses(
        (status = 200, description = "The dashboard", body = DashboardResponse),
        (status = 401, description = "`UNAUTHORIZED`", body = ErrorBody),
    )
)]
pub async fn dashboard(
    State(st): State<AppState>,
    auth: AuthUser,
) -> Result<Json<DashboardResponse>, ApiError> {
    let d = campaigns(&st).dashboard(viewer(&auth)).await?;
    let map = |v: Vec<Summary>| v.into_iter().map(EventSummary::from).collect();
    Ok(Json(DashboardResponse {
        active: map(d.active),
        approved: map(d.approved),
        completed: map(d.completed),
    }))
}

/// `GET /api/events` query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this status.
    status: Option<CampaignStatus>,
    /// In the title, participation method or store name.
    keyword: Option<String>,
    /// From 0.
    #[param(minimum = 0)]
    page: Option<i64>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
    /// `createdAt,desc` (default), `participantCount,desc` or `roi,desc`.
    sort: Option<String>,
}

/// A page of campaigns.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventListResponse {
    events: Vec<EventSummary>,
    total_count: i64,
    total_pages: i64,
    current_page: i64,
}

/// The caller's campaigns (an admin's: everybody's), filtered, sorted and paged.
#[utoipa::path(
    get, path = "/api/events", tag = "campaigns", params(ListQuery),
    responses(
        (status = 200, description = "A page", body = EventListResponse),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    auth: AuthUser,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<EventListResponse>, ApiError> {
    let page = q.page.unwrap_or(0);
    let size = q.size.unwrap_or(20);
    if !(0..=1_000_000).contains(&page) {
        return Err(ApiError::InvalidRequest("page must be 0 or more".into()));
    }
    if !(1..=100).contains(&size) {
        return Err(ApiError::InvalidRequest("size must be 1 to 100".into()));
    }
    let order = match q.sort.as_deref().map(|s| s.trim_end_matches(",desc")) {
        None | Some("createdAt") => ListOrder::CreatedAt,
        Some("participantCount") => ListOrder::Participants,
        Some("roi") => ListOrder::Roi,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "sort must be createdAt,desc, participantCount,desc or roi,desc".into(),
            ));
        }
    };
    let found = campaigns(&st)
        .list(viewer(&auth), q.status, keyword(q.keyword), order, page, size)
        .await?;
    Ok(Json(EventListResponse {
        total_pages: (found.total + size - 1) / size,
        total_count: found.total,
        current_page: page,
        events: found.items.into_iter().map(EventSummary::from).collect(),
    }))
}

/// A campaign in full.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    event_id: Uuid,
    title: String,
    objective: CampaignObjective,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<EventPeriod>,
    status: CampaignStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    participation_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_image_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_content: Option<EditedContent>,
    store_info: StoreInfoView,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_cost: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_participants: Option<i64>,
    #[serde(rename = "estimatedROI", skip_serializing_if = "Option::is_none")]
    estimated_roi: Option<f64>,
    /// Holders of its prize, live from the engine.
    participant_count: i64,
    /// Times its banners were served.
    view_count: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    published_at: Option<String>,
}

/// The store.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfoView {
    store_name: String,
    industry: String,
    region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
}

/// The prize on the engine.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prize {
    /// The campaign's id (one prize per campaign).
    prize_id: Uuid,
    prize_name: String,
    quantity: i32,
    /// GOLDEN_TICKET or COUPON.
    prize_type: PrizeKind,
    /// The golden-ticket event, once published.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_key: Option<String>,
    /// The coupon batch, once published.
    #[serde(skip_serializing_if = "Option::is_none")]
    coupon_id: Option<i64>,
    /// Where participants claim it, once published.
    #[serde(skip_serializing_if = "Option::is_none")]
    claim_url: Option<String>,
    /// Handed out so far.
    issued_count: i64,
}

/// A channel's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    channel_type: ChannelType,
    /// ACTIVE (the channel took it) or FAILED.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    distribution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_reach: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The channels.
#[derive(Serialize, ToSchema)]
pub struct DistributionState {
    channels: Vec<ChannelStatus>,
}

/// The seed's EventDetailResponse.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetailResponse {
    event: EventDetail,
    prizes: Vec<Prize>,
    distribution_status: DistributionState,
}

fn detail_view(c: &Campaigns, d: Detail) -> EventDetailResponse {
    let r = d.campaign;
    let published = r.status != CampaignStatus::Draft;
    let prizes = match (&r.prize_name, r.prize_quantity, r.prize_kind) {
        (Some(name), Some(quantity), Some(kind)) => vec![Prize {
            prize_id: r.campaign_id,
            prize_name: name.clone(),
            quantity,
            prize_type: kind,
            event_key: r.event_key.clone(),
            coupon_id: r.coupon_batch_id,
            claim_url: published.then(|| c.claim_url(&r)),
            issued_count: d.participant_count,
        }],
        _ => Vec::new(),
    };
    EventDetailResponse {
        event: EventDetail {
            event_id: r.campaign_id,
            title: r
                .title
                .clone()
                .unwrap_or_else(|| format!("{} 이벤트", r.store_name)),
            objective: r.objective,
            period: period(r.start_date, r.end_date),
            status: r.status,
            participation_method: r.participation_method.clone(),
            selected_image_url: r.selected_image_id.map(|i| c.image_url(i)),
            edited_content: r
                .edited_content
                .clone()
                .and_then(|v| serde_json::from_value(v).ok()),
            store_info: StoreInfoView {
                store_name: r.store_name.clone(),
                industry: r.industry.clone(),
                region: r.region.clone(),
                address: r.address.clone(),
            },
            estimated_cost: r.estimated_cost,
            estimated_participants: r.estimated_participants,
            estimated_roi: r.estimated_roi,
            participant_count: d.participant_count,
            view_count: d.view_count,
            created_at: kst(r.created_at),
            published_at: r.published_at.map(kst),
        },
        prizes,
        distribution_status: DistributionState {
            channels: d
                .channels
                .into_iter()
                .map(|ch| ChannelStatus {
                    channel_type: ch.channel_type,
                    status: match ch.status {
                        DistributionStatus::Success => "ACTIVE".into(),
                        DistributionStatus::Failed => "FAILED".into(),
                    },
                    distribution_id: ch.distribution_id,
                    estimated_reach: ch.estimated_reach,
                    error: ch.error,
                })
                .collect(),
        },
    }
}

/// A campaign with its prize, channels and live participants.
#[utoipa::path(
    get, path = "/api/events/{id}", tag = "campaigns",
    params(("id" = String, Path, format = Uuid, description = "The campaign")),
    responses(
        (status = 200, description = "The campaign", body = EventDetailResponse),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`CAMPAIGN_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn detail(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(raw): AppPath<String>,
) -> Result<Json<EventDetailResponse>, ApiError> {
    let c = campaigns(&st);
    let d = c.detail(viewer(&auth), id(&raw, Missing::Campaign)?).await?;
    Ok(Json(detail_view(c, d)))
}
