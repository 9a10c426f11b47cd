//! `campaigns`: marketing campaigns of small-business owners. COMPLETED is derived here, never
//! stored: an APPROVED or ACTIVE campaign whose period ended before today (KST) reads as
//! COMPLETED, in every query, so no job has to move it.

use chrono::{DateTime, NaiveDate, Utc};
use issuance_core::{
    enums::{CampaignObjective, CampaignStatus, PrizeKind},
    error::Error,
};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

/// The status a reader sees (see the module doc).
const STATUS: &str = "CASE WHEN status IN ('APPROVED', 'ACTIVE')
                           AND end_date < (now() AT TIME ZONE 'Asia/Seoul')::date
                      THEN 'COMPLETED'::campaign_status ELSE status END";

fn columns() -> String {
    format!(
        "campaign_id, owner_id, objective, store_name, industry, region, address, {STATUS} AS status, \
         title, prize_name, participation_method, estimated_cost, estimated_participants, estimated_roi, \
         prize_kind, prize_quantity, start_date, end_date, selected_image_id, edited_content, event_key, \
         coupon_batch_id, created_at, updated_at, published_at"
    )
}

/// A campaign as stored (status as a reader sees it).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CampaignRow {
    /// Its id (the seed's `eventDraftId` / `eventId`).
    pub campaign_id: Uuid,
    /// The user it belongs to.
    pub owner_id: i64,
    /// What it is for.
    pub objective: CampaignObjective,
    /// The store's name.
    pub store_name: String,
    /// The store's industry (free text).
    pub industry: String,
    /// The store's region.
    pub region: String,
    /// The store's address.
    pub address: Option<String>,
    /// DRAFT, APPROVED, ACTIVE or COMPLETED.
    pub status: CampaignStatus,
    /// The chosen recommendation's title, as edited.
    pub title: Option<String>,
    /// The prize, as edited.
    pub prize_name: Option<String>,
    /// How to take part.
    pub participation_method: Option<String>,
    /// The recommendation's estimated cost (KRW).
    pub estimated_cost: Option<i64>,
    /// The recommendation's estimated participants.
    pub estimated_participants: Option<i64>,
    /// The recommendation's estimated ROI (%).
    pub estimated_roi: Option<f64>,
    /// Golden ticket or coupon.
    pub prize_kind: Option<PrizeKind>,
    /// How many prizes.
    pub prize_quantity: Option<i32>,
    /// First day (KST).
    pub start_date: Option<NaiveDate>,
    /// Last day (KST).
    pub end_date: Option<NaiveDate>,
    /// The banner chosen with the content.
    pub selected_image_id: Option<Uuid>,
    /// The edited texts and colours (the seed's EditedContent, as JSON).
    pub edited_content: Option<serde_json::Value>,
    /// The golden-ticket event of the prize.
    pub event_key: Option<String>,
    /// The coupon batch of the prize.
    pub coupon_batch_id: Option<i64>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Approved and put on the engine.
    pub published_at: Option<DateTime<Utc>>,
}

/// A new draft.
#[derive(Clone, Debug)]
pub struct NewDraft {
    /// Its id.
    pub campaign_id: Uuid,
    /// Its owner.
    pub owner_id: i64,
    /// What it is for.
    pub objective: CampaignObjective,
    /// Store name.
    pub store_name: String,
    /// Industry.
    pub industry: String,
    /// Region.
    pub region: String,
    /// Address.
    pub address: Option<String>,
}

/// The recommendation an owner chose, with the prize's terms.
#[derive(Clone, Debug)]
pub struct Choice {
    /// Title.
    pub title: String,
    /// Prize.
    pub prize_name: String,
    /// How to take part.
    pub participation_method: String,
    /// Estimated cost.
    pub estimated_cost: i64,
    /// Estimated participants.
    pub estimated_participants: i64,
    /// Estimated ROI.
    pub estimated_roi: f64,
    /// Golden ticket or coupon.
    pub prize_kind: PrizeKind,
    /// How many.
    pub prize_quantity: i32,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
}

/// The prize created on the engine.
#[derive(Clone, Debug)]
pub enum PrizeRef {
    /// A golden-ticket event.
    Ticket(String),
    /// A coupon batch.
    Coupon(i64),
}

/// Which campaigns a list shows.
#[derive(Clone, Debug, Default)]
pub struct CampaignFilter {
    /// Only this owner's (none: everybody's, for admins).
    pub owner_id: Option<i64>,
    /// Only this status.
    pub status: Option<CampaignStatus>,
    /// Title or participation method contains it (case-insensitive).
    pub keyword: Option<String>,
}

/// Inserts a draft.
pub async fn insert(db: impl PgExecutor<'_>, d: &NewDraft) -> Result<CampaignRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO campaigns (campaign_id, owner_id, objective, store_name, industry, region, address)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {}",
        columns()
    )))
    .bind(d.campaign_id)
    .bind(d.owner_id)
    .bind(d.objective)
    .bind(&d.store_name)
    .bind(&d.industry)
    .bind(&d.region)
    .bind(&d.address)
    .fetch_one(db)
    .await?)
}

/// A campaign.
pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<CampaignRow>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM campaigns WHERE campaign_id = $1",
        columns()
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// A campaign, locked for the rest of the transaction.
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<CampaignRow>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM campaigns WHERE campaign_id = $1 FOR UPDATE",
        columns()
    )))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Records the chosen recommendation of a DRAFT.
pub async fn choose(db: impl PgExecutor<'_>, id: Uuid, c: &Choice) -> Result<CampaignRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE campaigns SET title = $2, prize_name = $3, participation_method = $4,
                estimated_cost = $5, estimated_participants = $6, estimated_roi = $7,
                prize_kind = $8, prize_quantity = $9, start_date = $10, end_date = $11, updated_at = now()
         WHERE campaign_id = $1 RETURNING {}",
        columns()
    )))
    .bind(id)
    .bind(&c.title)
    .bind(&c.prize_name)
    .bind(&c.participation_method)
    .bind(c.estimated_cost)
    .bind(c.estimated_participants)
    .bind(c.estimated_roi)
    .bind(c.prize_kind)
    .bind(c.prize_quantity)
    .bind(c.start_date)
    .bind(c.end_date)
    .fetch_one(db)
    .await?)
}

/// Records the chosen banner and the edited content of a DRAFT (an edited title becomes the
/// campaign's title).
pub async fn save_content(
    db: impl PgExecutor<'_>,
    id: Uuid,
    image_id: Uuid,
    content: &serde_json::Value,
    title: Option<&str>,
) -> Result<CampaignRow, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE campaigns SET selected_image_id = $2, edited_content = $3, title = coalesce($4, title),
                updated_at = now()
         WHERE campaign_id = $1 RETURNING {}",
        columns()
    )))
    .bind(id)
    .bind(image_id)
    .bind(content)
    .bind(title)
    .fetch_one(db)
    .await?)
}

/// DRAFT → APPROVED with its prize (the CHECK refuses one without the other).
pub async fn approve(db: impl PgExecutor<'_>, id: Uuid, prize: &PrizeRef) -> Result<CampaignRow, Error> {
    let (event_key, batch_id) = match prize {
        PrizeRef::Ticket(key) => (Some(key.as_str()), None),
        PrizeRef::Coupon(id) => (None, Some(*id)),
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE campaigns SET status = 'APPROVED', event_key = $2, coupon_batch_id = $3,
                published_at = now(), updated_at = now()
         WHERE campaign_id = $1 AND status = 'DRAFT' RETURNING {}",
        columns()
    )))
    .bind(id)
    .bind(event_key)
    .bind(batch_id)
    .fetch_one(db)
    .await?)
}

/// Takes the campaign's publication lock for the rest of the transaction, if nobody holds it
/// (a transaction-level advisory lock: released at commit, rollback or a dropped connection).
pub async fn try_lock_publication(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, Error> {
    Ok(sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('campaign-publication:' || $1::text, 0))",
    )
    .bind(id)
    .fetch_one(db)
    .await?)
}

/// APPROVED → ACTIVE (a channel took it); an ACTIVE one stays.
pub async fn activate(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE campaigns SET status = 'ACTIVE', updated_at = now()
         WHERE campaign_id = $1 AND status = 'APPROVED'",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// How a list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignOrder {
    /// Newest first.
    CreatedAt,
    /// Highest estimated ROI first (none last).
    Roi,
}

fn filtered(q: &mut QueryBuilder<Postgres>, f: &CampaignFilter) {
    q.push(" WHERE true");
    if let Some(owner) = f.owner_id {
        q.push(" AND owner_id = ").push_bind(owner);
    }
    if let Some(status) = f.status {
        q.push(format!(" AND ({STATUS}) = ")).push_bind(status);
    }
    if let Some(k) = f.keyword.as_deref().filter(|k| !k.is_empty()) {
        let pattern = issuance_core::paging::like_pattern(k);
        q.push(" AND (title ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR participation_method ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR store_name ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
}

/// How many campaigns match.
pub async fn count(db: impl PgExecutor<'_>, f: &CampaignFilter) -> Result<i64, Error> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM campaigns");
    filtered(&mut q, f);
    Ok(q.build_query_scalar().fetch_one(db).await?)
}

/// One page of the matching campaigns in `order`.
pub async fn list(
    db: impl PgExecutor<'_>,
    f: &CampaignFilter,
    order: CampaignOrder,
    offset: i64,
    limit: i64,
) -> Result<Vec<CampaignRow>, Error> {
    let mut q = QueryBuilder::new(format!("SELECT {} FROM campaigns", columns()));
    filtered(&mut q, f);
    q.push(match order {
        CampaignOrder::CreatedAt => " ORDER BY created_at DESC, campaign_id",
        CampaignOrder::Roi => " ORDER BY estimated_roi DESC NULLS LAST, created_at DESC, campaign_id",
    });
    q.push(" LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    Ok(q.build_query_as().fetch_all(db).await?)
}

/// Every matching campaign, newest first (to order by live participants, which only Redis knows).
pub async fn matching(db: impl PgExecutor<'_>, f: &CampaignFilter) -> Result<Vec<CampaignRow>, Error> {
    let mut q = QueryBuilder::new(format!("SELECT {} FROM campaigns", columns()));
    filtered(&mut q, f);
    q.push(" ORDER BY created_at DESC, campaign_id");
    Ok(q.build_query_as().fetch_all(db).await?)
}

/// The dashboard: up to `per_status` newest APPROVED, ACTIVE and COMPLETED campaigns each.
pub async fn dashboard(
    db: impl PgExecutor<'_>,
    owner_id: Option<i64>,
    per_status: i64,
) -> Result<Vec<CampaignRow>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {cols} FROM (
             SELECT c.*, row_number() OVER (PARTITION BY {STATUS} ORDER BY created_at DESC, campaign_id) AS n
             FROM campaigns c WHERE ($1::bigint IS NULL OR owner_id = $1) AND status <> 'DRAFT'
         ) ranked WHERE n <= $2 ORDER BY created_at DESC, campaign_id",
        cols = columns()
    )))
    .bind(owner_id)
    .bind(per_status)
    .fetch_all(db)
    .await?)
}
