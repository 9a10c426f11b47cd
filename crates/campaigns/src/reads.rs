//! Reading campaigns: detail, list and dashboard, each with live participant counts — the
//! holders of the campaign's prize, read from Redis for all rows of an answer in one pipelined
//! round trip (never a query per row).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use engine::scope::Scope;
use fred::{interfaces::KeysInterface, types::Expiration};
use issuance_core::{
    enums::CampaignStatus,
    error::{Error, Missing},
    ids::EventKey,
};
use serde::{Deserialize, Serialize};
use store::{
    campaign_channels::ChannelRow,
    campaigns::{CampaignFilter, CampaignOrder, CampaignRow},
};
use uuid::Uuid;

use crate::{Campaigns, model::Viewer};

/// Most campaigns per status on the dashboard (the seed).
pub const DASHBOARD_PER_STATUS: i64 = 5;

/// A campaign as lists show it (and the dashboard cache keeps it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Its id.
    pub campaign_id: Uuid,
    /// Its title (the store's name until a recommendation is chosen).
    pub title: String,
    /// Status.
    pub status: CampaignStatus,
    /// First day.
    pub start_date: Option<NaiveDate>,
    /// Last day.
    pub end_date: Option<NaiveDate>,
    /// Estimated ROI (%).
    pub roi: Option<f64>,
    /// Banner views (live, from Redis).
    #[serde(skip)]
    pub view_count: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Its prize's golden-ticket event.
    pub event_key: Option<String>,
    /// Its prize's coupon batch.
    pub coupon_batch_id: Option<i64>,
    /// Holders of its prize, live (0 before it has one).
    #[serde(skip)]
    pub participant_count: i64,
}

impl From<&CampaignRow> for Summary {
    fn from(r: &CampaignRow) -> Self {
        Self {
            campaign_id: r.campaign_id,
            title: r
                .title
                .clone()
                .unwrap_or_else(|| format!("{} 이벤트", r.store_name)),
            status: r.status,
            start_date: r.start_date,
            end_date: r.end_date,
            roi: r.estimated_roi,
            view_count: 0,
            created_at: r.created_at,
            event_key: r.event_key.clone(),
            coupon_batch_id: r.coupon_batch_id,
            participant_count: 0,
        }
    }
}

/// The dashboard: up to five campaigns per status, newest first.
#[derive(Clone, Debug, Default)]
pub struct Dashboard {
    /// ACTIVE.
    pub active: Vec<Summary>,
    /// APPROVED.
    pub approved: Vec<Summary>,
    /// COMPLETED.
    pub completed: Vec<Summary>,
}

/// A campaign with everything its detail shows.
#[derive(Clone, Debug)]
pub struct Detail {
    /// The campaign.
    pub campaign: CampaignRow,
    /// Its channels.
    pub channels: Vec<ChannelRow>,
    /// Holders of its prize, live.
    pub participant_count: i64,
    /// Banner views.
    pub view_count: i64,
}

/// How a list is ordered (the seed's `sort`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOrder {
    /// `createdAt,desc`.
    CreatedAt,
    /// `participantCount,desc`.
    Participants,
    /// `roi,desc`.
    Roi,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The rows.
    pub items: Vec<Summary>,
    /// All matching.
    pub total: i64,
}

/// The scope of a prize.
fn scope_of(event_key: Option<&str>, batch: Option<i64>) -> Option<Scope> {
    match (event_key, batch) {
        (Some(key), _) => EventKey::parse(key).ok().map(Scope::Ticket),
        (None, Some(id)) => Some(Scope::Coupon(id)),
        _ => None,
    }
}

impl Campaigns {
    /// Fills in live participant counts and banner views: two pipelined batches of reads on
    /// one connection each, whatever the number of rows.
    async fn count(&self, items: &mut [Summary]) -> Result<(), Error> {
        let with: Vec<(usize, Scope)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| scope_of(s.event_key.as_deref(), s.coupon_batch_id).map(|sc| (i, sc)))
            .collect();
        let scopes: Vec<Scope> = with.iter().map(|(_, s)| s.clone()).collect();
        let ids: Vec<Uuid> = items.iter().map(|s| s.campaign_id).collect();
        let (counts, views) = futures::try_join!(self.engine.holder_counts(&scopes), self.views(&ids))?;
        for ((i, _), n) in with.iter().zip(counts) {
            items[*i].participant_count = n;
        }
        for (item, v) in items.iter_mut().zip(views) {
            item.view_count = v;
        }
        Ok(())
    }

    /// Banner views of each campaign, in order.
    async fn views(&self, ids: &[Uuid]) -> Result<Vec<i64>, Error> {
        let client = self.engine.redis().next();
        Ok(futures::future::try_join_all(ids.iter().map(|id| {
            let key = self.engine.keys().campaign_views(&id.to_string());
            async move {
                client
                    .get::<Option<i64>, _>(key)
                    .await
                    .map(Option::unwrap_or_default)
            }
        }))
        .await?)
    }

    /// A campaign with its channels and live participants.
    pub async fn detail(&self, viewer: Viewer, id: Uuid) -> Result<Detail, Error> {
        let db = self.engine.db();
        let campaign = self.own(&mut *db.acquire().await?, viewer, id, false).await?;
        let channels = store::campaign_channels::of(db, id).await?;
        let mut summary = [Summary::from(&campaign)];
        self.count(&mut summary).await?;
        Ok(Detail {
            campaign,
            channels,
            participant_count: summary[0].participant_count,
            view_count: summary[0].view_count,
        })
    }

    /// One page of the viewer's campaigns (everybody's for an admin). Ordering by participants
    /// reads the counts of every matching campaign (one pipelined round trip) and sorts them
    /// here, since only Redis knows them: fine for an owner's list; an admin's list of tens of
    /// thousands of campaigns should filter first.
    pub async fn list(
        &self,
        viewer: Viewer,
        status: Option<CampaignStatus>,
        keyword: Option<String>,
        order: ListOrder,
        page: i64,
        size: i64,
    ) -> Result<ListPage, Error> {
        let db = self.engine.db();
        let filter = CampaignFilter {
            owner_id: viewer.owner_filter(),
            status,
            keyword,
        };
        let offset = page.saturating_mul(size);
        match order {
            ListOrder::CreatedAt | ListOrder::Roi => {
                let total = store::campaigns::count(db, &filter).await?;
                let by = if order == ListOrder::Roi {
                    CampaignOrder::Roi
                } else {
                    CampaignOrder::CreatedAt
                };
                let rows = store::campaigns::list(db, &filter, by, offset, size).await?;
                let mut items: Vec<Summary> = rows.iter().map(Summary::from).collect();
                self.count(&mut items).await?;
                Ok(ListPage { items, total })
            }
            ListOrder::Participants => {
                let rows = store::campaigns::matching(db, &filter).await?;
                let mut items: Vec<Summary> = rows.iter().map(Summary::from).collect();
                self.count(&mut items).await?;
                // Stable: equal counts keep newest first.
                items.sort_by_key(|s| std::cmp::Reverse(s.participant_count));
                let total = items.len() as i64;
                let items = items
                    .into_iter()
                    .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                    .take(usize::try_from(size).unwrap_or(0))
                    .collect();
                Ok(ListPage { items, total })
            }
        }
    }

    /// The dashboard: the rows from the Redis cache (the seed: 1 minute; dropped on every
    /// change of a campaign on it), the participant counts live.
    pub async fn dashboard(&self, viewer: Viewer) -> Result<Dashboard, Error> {
        let owner = viewer.owner_filter();
        let key = self.engine.keys().campaign_dashboard(owner);
        let client = self.engine.redis().next();
        let cached: Option<Vec<Summary>> = match client.get::<Option<String>, _>(&key).await {
            Ok(json) => json.and_then(|j| serde_json::from_str(&j).ok()),
            Err(e) => {
                tracing::debug!(error = %e, "campaign dashboard cache unreadable");
                None
            }
        };
        let mut rows = match cached {
            Some(rows) => rows,
            None => {
                let rows: Vec<Summary> =
                    store::campaigns::dashboard(self.engine.db(), owner, DASHBOARD_PER_STATUS)
                        .await?
                        .iter()
                        .map(Summary::from)
                        .collect();
                if let Ok(json) = serde_json::to_string(&rows) {
                    let ttl = Expiration::PX(self.options.dashboard_ttl.as_millis().max(1) as i64);
                    if let Err(e) = client.set::<(), _, _>(&key, json, Some(ttl), None, false).await {
                        tracing::debug!(error = %e, "campaign dashboard not cached");
                    }
                }
                rows
            }
        };
        // A cached ACTIVE row whose period ended since reads as COMPLETED now.
        let today = issuance_core::clock::kst_date(chrono::Utc::now());
        for r in &mut rows {
            if matches!(r.status, CampaignStatus::Active | CampaignStatus::Approved)
                && r.end_date.is_some_and(|e| e < today)
            {
                r.status = CampaignStatus::Completed;
            }
        }
        self.count(&mut rows).await?;
        let mut d = Dashboard::default();
        for r in rows {
            let list = match r.status {
                CampaignStatus::Active => &mut d.active,
                CampaignStatus::Approved => &mut d.approved,
                CampaignStatus::Completed => &mut d.completed,
                CampaignStatus::Draft => continue,
            };
            if list.len() < DASHBOARD_PER_STATUS as usize {
                list.push(r);
            }
        }
        Ok(d)
    }

    /// A banner's PNG (banners never change, so they are kept in a bounded in-process cache
    /// after the first read); every serving counts a view of its campaign, in Redis.
    pub async fn image(&self, id: Uuid) -> Result<Arc<Vec<u8>>, Error> {
        let (png, campaign_id) = match self.images.get(&id) {
            Some(hit) => hit,
            None => {
                if self.missing_images.contains_key(&id) {
                    return Err(Error::NotFound(Missing::Image));
                }
                let Some((png, campaign_id)) = store::campaign_images::png(self.engine.db(), id).await?
                else {
                    self.missing_images.insert(id, ());
                    return Err(Error::NotFound(Missing::Image));
                };
                let hit = (Arc::new(png), campaign_id);
                self.images.insert(id, hit.clone());
                hit
            }
        };
        let key = self.engine.keys().campaign_views(&campaign_id.to_string());
        if let Err(e) = self.engine.redis().next().incr::<i64, _>(key).await {
            tracing::debug!(error = %e, "banner view not counted");
        }
        Ok(png)
    }
}
