//! A campaign's life: DRAFT (create, ask for recommendations and banners, choose, edit) →
//! APPROVED (published: its prize is on the engine) → ACTIVE (a channel took it) → COMPLETED
//! (its period ended; derived). Every operation checks that the caller owns the campaign
//! (admins may act on any); another user gets [`Error::Forbidden`].

use std::{sync::Arc, time::Duration};

use chrono::{Days, Utc};
use engine::Engine;
use fred::interfaces::KeysInterface;
use issuance_core::{
    clock,
    enums::{
        BannerStyle, BatchStatus, CampaignJobKind, CampaignJobStatus, CampaignObjective, CampaignStatus,
        ChannelType, DistributionStatus, EventStatus, InventoryStatus, IssueType, PrizeKind,
    },
    error::{Error, Missing, Refusal},
    ids::EventKey,
};
use sqlx::PgConnection;
use store::{
    campaign_channels::ChannelRow,
    campaign_jobs::CampaignJob,
    campaigns::{CampaignRow, Choice, NewDraft, PrizeRef},
    ticket_events::{NewTicketEvent, TicketEvent},
};
use uuid::Uuid;

use crate::{
    banner::{self, Palette},
    channels::{Delivery, Distributor, Outcome},
    jobs::{self, JobState, banner_text},
    model::{ChoiceInput, Complaints, EditedContent, MAX_QUANTITY, StoreInfo, Viewer},
};

/// Settings of the campaign routes.
#[derive(Clone, Debug)]
pub struct Options {
    /// The api's public base URL (banner URLs and claim links are built on it).
    pub public_url: String,
    /// How long a dashboard stays cached (the seed: 1 minute).
    pub dashboard_ttl: Duration,
    /// Longest campaign period, in days.
    pub max_days: u64,
}

/// Campaigns on one engine.
#[derive(Clone)]
pub struct Campaigns {
    pub(crate) engine: Engine,
    pub(crate) distributor: Arc<Distributor>,
    pub(crate) options: Options,
    /// Banners served lately: id → (PNG, campaign).
    pub(crate) images: moka::sync::Cache<Uuid, (Arc<Vec<u8>>, Uuid)>,
    /// Ids asked for lately that name no banner (a flood of made-up ids costs one query each
    /// per 10 s, not one per request).
    pub(crate) missing_images: moka::sync::Cache<Uuid, ()>,
}

/// Where banners are served: `{public_url}/api/events/images/{id}`.
pub const IMAGE_PATH: &str = "/api/events/images/";

/// A channel the owner selected, with its settings.
#[derive(Clone, Debug)]
pub struct SelectedChannel {
    /// The channel.
    pub channel_type: ChannelType,
    /// Its settings (free-form, passed on).
    pub settings: serde_json::Value,
}

/// What publishing did.
#[derive(Clone, Debug)]
pub struct Published {
    /// The campaign after it.
    pub campaign: CampaignRow,
    /// Each selected channel's latest answer, in the order selected.
    pub results: Vec<Outcome>,
}

impl Published {
    /// Whether no channel holds the campaign (it stays APPROVED).
    pub fn nowhere(&self) -> bool {
        self.campaign.status == CampaignStatus::Approved
    }
}

/// The saved content.
#[derive(Clone, Debug)]
pub struct SavedContent {
    /// The campaign.
    pub campaign: CampaignRow,
    /// The banner re-rendered with the content.
    pub image_id: Uuid,
    /// The content.
    pub content: EditedContent,
}

impl Campaigns {
    /// Campaigns on `engine`, distributed by `distributor`.
    pub fn new(engine: Engine, distributor: Distributor, options: Options) -> Self {
        Self {
            engine,
            distributor: Arc::new(distributor),
            options,
            // About 64 MiB of the most-served banners (a banner is ~50–150 kB).
            images: moka::sync::Cache::builder()
                .weigher(|_, (png, _): &(Arc<Vec<u8>>, Uuid)| u32::try_from(png.len()).unwrap_or(u32::MAX))
                .max_capacity(64 * 1024 * 1024)
                .build(),
            missing_images: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(10))
                .build(),
        }
    }

    /// A banner's public URL.
    pub fn image_url(&self, id: Uuid) -> String {
        format!(
            "{}{IMAGE_PATH}{id}",
            self.options.public_url.trim_end_matches('/')
        )
    }

    /// The campaign, if the viewer may touch it.
    pub(crate) async fn own(
        &self,
        db: &mut PgConnection,
        viewer: Viewer,
        id: Uuid,
        lock: bool,
    ) -> Result<CampaignRow, Error> {
        let row = if lock {
            store::campaigns::lock(&mut *db, id).await?
        } else {
            store::campaigns::find(&mut *db, id).await?
        };
        let row = row.ok_or(Error::NotFound(Missing::Campaign))?;
        if !viewer.may_touch(row.owner_id) {
            return Err(Error::Forbidden);
        }
        Ok(row)
    }

    fn draft(row: &CampaignRow) -> Result<(), Error> {
        if row.status == CampaignStatus::Draft {
            Ok(())
        } else {
            Err(Error::Refused(Refusal::CampaignNotEditable))
        }
    }

    /// Drops the cached dashboards the campaign appears on (its owner's and the admins').
    pub(crate) async fn changed(&self, owner: i64) {
        let keys = self.engine.keys();
        let dashboards = vec![
            keys.campaign_dashboard(Some(owner)),
            keys.campaign_dashboard(None),
        ];
        if let Err(e) = self.engine.redis().next().del::<i64, _>(dashboards).await {
            // The cache expires within its TTL anyway.
            tracing::warn!(error = %e, "campaign dashboard not invalidated");
        }
    }

    /// Creates a DRAFT for the viewer.
    pub async fn create(
        &self,
        viewer: Viewer,
        objective: CampaignObjective,
        store: StoreInfo,
    ) -> Result<CampaignRow, Error> {
        let mut c = Complaints::default();
        store.check(&mut c);
        c.finish()?;
        let store = store.trimmed();
        let row = store::campaigns::insert(
            self.engine.db(),
            &NewDraft {
                campaign_id: Uuid::now_v7(),
                owner_id: viewer.user_id,
                objective,
                store_name: store.store_name,
                industry: store.industry,
                region: store.region,
                address: store.address,
            },
        )
        .await?;
        Ok(row)
    }

    /// Queues a recommendation or banner job for a DRAFT. Banners need a chosen
    /// recommendation (their texts come from it).
    pub async fn request(
        &self,
        viewer: Viewer,
        id: Uuid,
        kind: CampaignJobKind,
    ) -> Result<CampaignJob, Error> {
        let mut tx = self.engine.db().begin().await?;
        let row = self.own(&mut tx, viewer, id, true).await?;
        Self::draft(&row)?;
        if kind == CampaignJobKind::Images && row.title.is_none() {
            return Err(Error::NotReady(vec!["recommendation"]));
        }
        let job = store::campaign_jobs::insert(&mut *tx, Uuid::now_v7(), id, kind).await?;
        jobs::push(&mut tx, job.job_id).await?;
        tx.commit().await?;
        metrics::counter!("issuer_campaign_jobs_requested_total", "kind" => match kind {
            CampaignJobKind::Recommendation => "recommendation",
            CampaignJobKind::Images => "images",
        })
        .increment(1);
        Ok(job)
    }

    /// A job's state, if the viewer owns its campaign: an ended job from the Redis cache, a
    /// running one from Postgres.
    pub async fn job(&self, viewer: Viewer, job_id: Uuid) -> Result<JobState, Error> {
        let state = match jobs::cached(&self.engine, job_id).await {
            Some(state) => state,
            None => {
                let db = self.engine.db();
                let job = store::campaign_jobs::find(db, job_id)
                    .await?
                    .ok_or(Error::NotFound(Missing::CampaignJob))?;
                let owner = store::campaigns::find(db, job.campaign_id)
                    .await?
                    .map_or(0, |c| c.owner_id);
                let state = JobState::of(&job, owner);
                jobs::cache(&self.engine, &state).await;
                state
            }
        };
        if !viewer.may_touch(state.owner_id) {
            return Err(Error::Forbidden);
        }
        Ok(state)
    }

    /// Records the owner's choice among a completed job's recommendations, with the prize's
    /// kind, quantity and period.
    pub async fn choose(&self, viewer: Viewer, id: Uuid, input: ChoiceInput) -> Result<CampaignRow, Error> {
        let mut tx = self.engine.db().begin().await?;
        let row = self.own(&mut tx, viewer, id, true).await?;
        Self::draft(&row)?;
        let job = store::campaign_jobs::find(&mut *tx, input.job_id).await?;
        let recommendations = job
            .filter(|j| {
                j.campaign_id == id
                    && j.kind == CampaignJobKind::Recommendation
                    && j.status == CampaignJobStatus::Completed
            })
            .and_then(|j| JobState::of(&j, row.owner_id).recommendations)
            .ok_or(Error::Refused(Refusal::RecommendationNotReady))?;
        let mut c = Complaints::default();
        let picked = usize::try_from(input.index)
            .ok()
            .and_then(|i| recommendations.get(i));
        if picked.is_none() {
            c.add("index", "0, 1, 2 중 하나여야 합니다.");
        }
        if let Some(t) = &input.title {
            c.text("title", t, 50);
        }
        if let Some(p) = &input.prize {
            c.text("prize", p, 100);
        }
        if let Some(q) = input.quantity
            && !(1..=MAX_QUANTITY).contains(&q)
        {
            c.add("quantity", format!("1 이상 {MAX_QUANTITY} 이하여야 합니다."));
        }
        if input.end_date < input.start_date {
            c.add("endDate", "시작일 이후여야 합니다.");
        } else if input.end_date < clock::kst_date(Utc::now()) {
            c.add("endDate", "오늘 이후여야 합니다.");
        } else if (input.end_date - input.start_date).num_days() as u64 >= self.options.max_days {
            c.add(
                "endDate",
                format!("기간은 {}일 이하여야 합니다.", self.options.max_days),
            );
        }
        c.finish()?;
        let r = picked.expect("checked above");
        let trim = |s: &Option<String>, default: &str| s.as_deref().map_or(default, str::trim).to_owned();
        let choice = Choice {
            title: trim(&input.title, &r.title),
            prize_name: trim(&input.prize, &r.prize),
            participation_method: r.participation_method.clone(),
            estimated_cost: r.estimated_cost,
            estimated_participants: r.estimated_participants,
            estimated_roi: r.estimated_roi,
            prize_kind: input.prize_kind.unwrap_or(PrizeKind::GoldenTicket),
            prize_quantity: input.quantity.unwrap_or(r.suggested_quantity) as i32,
            start_date: input.start_date,
            end_date: input.end_date,
        };
        let row = store::campaigns::choose(&mut *tx, id, &choice).await?;
        tx.commit().await?;
        self.changed(row.owner_id).await;
        Ok(row)
    }

    /// Saves the chosen banner with its edited content: `selected_url` must be one of this
    /// campaign's banners (a generated one, or one re-rendered from it); the banner is drawn
    /// again with the edited texts and colours, and that drawing is the campaign's banner.
    pub async fn save_content(
        &self,
        viewer: Viewer,
        id: Uuid,
        selected_url: &str,
        content: EditedContent,
    ) -> Result<SavedContent, Error> {
        let mut c = Complaints::default();
        content.check(&mut c);
        c.finish()?;
        let db = self.engine.db();
        let row = self.own(&mut *db.acquire().await?, viewer, id, false).await?;
        Self::draft(&row)?;
        let image = image_of_url(selected_url).ok_or(Error::Refused(Refusal::ImageNotGenerated))?;
        let info = store::campaign_images::info(db, image)
            .await?
            .filter(|i| i.campaign_id == id)
            .ok_or(Error::Refused(Refusal::ImageNotGenerated))?;
        let source = info.source_id.unwrap_or(info.image_id);
        let style: BannerStyle = info.style;
        let text = banner_text(&row, Some(&content));
        let palette = Palette::of(style).with(
            content.background_color.as_deref(),
            content.text_color.as_deref(),
            content.accent_color.as_deref(),
        );
        let png = tokio::task::spawn_blocking(move || banner::banner(style, &text, &palette))
            .await
            .map_err(|e| Error::protocol("banner", e.to_string()))?
            .map_err(|e| Error::protocol("banner", e.to_string()))?;
        let edited_id = Uuid::now_v7();
        let json = serde_json::to_value(&content).map_err(|e| Error::protocol("content", e.to_string()))?;
        let mut tx = db.begin().await?;
        let locked = self.own(&mut tx, viewer, id, true).await?;
        Self::draft(&locked)?;
        store::campaign_images::insert(
            &mut *tx,
            &store::campaign_images::NewImage {
                image_id: edited_id,
                campaign_id: id,
                style,
                png: &png.bytes,
                width: png.width as i32,
                height: png.height as i32,
                source_id: Some(source),
            },
        )
        .await?;
        let title = content.title.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let campaign = store::campaigns::save_content(&mut *tx, id, edited_id, &json, title).await?;
        tx.commit().await?;
        self.changed(campaign.owner_id).await;
        Ok(SavedContent {
            campaign,
            image_id: edited_id,
            content,
        })
    }

    /// Publishes: a DRAFT that has a chosen recommendation and saved content gets its prize on
    /// the engine **in the transaction that approves it** (the table's CHECK refuses one
    /// without the other), then each selected channel that does not hold the campaign yet is
    /// called. A channel that took it makes the campaign ACTIVE; if none did, it stays APPROVED
    /// with its prize, and publishing again retries the channels (the prize is not created
    /// twice). While one request distributes a campaign, another gets
    /// [`Refusal::PublishInProgress`].
    pub async fn publish(
        &self,
        viewer: Viewer,
        id: Uuid,
        selected: Vec<SelectedChannel>,
    ) -> Result<Published, Error> {
        let mut c = Complaints::default();
        if selected.is_empty() {
            c.add("selectedChannels", "채널을 1개 이상 선택해야 합니다.");
        }
        for (i, s) in selected.iter().enumerate() {
            if selected[..i].iter().any(|o| o.channel_type == s.channel_type) {
                c.add(
                    format!("selectedChannels[{i}].channelType"),
                    "같은 채널을 두 번 선택했습니다.",
                );
            }
            if !s.settings.is_object() && !s.settings.is_null() {
                c.add(format!("selectedChannels[{i}].settings"), "객체여야 합니다.");
            }
        }
        c.finish()?;
        // One publication at a time per campaign, from approval to the last channel's answer,
        // so two requests never call one channel twice. The lock belongs to a transaction that
        // writes nothing: a crashed api's connection drops and releases it.
        let mut publishing = self.engine.db().begin().await?;
        self.own(&mut publishing, viewer, id, false).await?;
        if !store::campaigns::try_lock_publication(&mut *publishing, id).await? {
            return Err(Error::Refused(Refusal::PublishInProgress));
        }
        let mut tx = self.engine.db().begin().await?;
        let row = self.own(&mut tx, viewer, id, true).await?;
        let created_event = match row.status {
            CampaignStatus::Draft => {
                let mut missing = Vec::new();
                if row.title.is_none() {
                    missing.push("recommendation");
                }
                if row.selected_image_id.is_none() {
                    missing.push("content");
                }
                if !missing.is_empty() {
                    return Err(Error::NotReady(missing));
                }
                let (prize, event) = self.create_prize(&mut tx, &row).await?;
                store::campaigns::approve(&mut *tx, id, &prize).await?;
                tx.commit().await?;
                metrics::counter!("issuer_campaigns_published_total").increment(1);
                event
            }
            CampaignStatus::Approved | CampaignStatus::Active => {
                tx.commit().await?;
                None
            }
            CampaignStatus::Completed => return Err(Error::Refused(Refusal::CampaignNotEditable)),
        };
        if let Some(event) = created_event {
            self.engine.event_created(&event).await;
        }
        let row = store::campaigns::find(self.engine.db(), id)
            .await?
            .ok_or(Error::NotFound(Missing::Campaign))?;
        let results = self.distribute(&row, &selected).await?;
        if results.iter().any(|r| r.status == DistributionStatus::Success) {
            store::campaigns::activate(self.engine.db(), id).await?;
        }
        publishing.commit().await?;
        self.changed(row.owner_id).await;
        let campaign = store::campaigns::find(self.engine.db(), id)
            .await?
            .ok_or(Error::NotFound(Missing::Campaign))?;
        Ok(Published { campaign, results })
    }

    /// Creates the prize of an approved campaign inside `tx`.
    async fn create_prize(
        &self,
        tx: &mut PgConnection,
        row: &CampaignRow,
    ) -> Result<(PrizeRef, Option<TicketEvent>), Error> {
        let (Some(title), Some(quantity), Some(start), Some(end)) =
            (&row.title, row.prize_quantity, row.start_date, row.end_date)
        else {
            return Err(Error::NotReady(vec!["recommendation"]));
        };
        let from = clock::kst_midnight(start);
        let until = clock::kst_midnight(end.checked_add_days(Days::new(1)).unwrap_or(end))
            - chrono::Duration::seconds(1);
        let actor = format!("campaign:{}", row.owner_id);
        match row.prize_kind.unwrap_or(PrizeKind::GoldenTicket) {
            PrizeKind::GoldenTicket => {
                let key = EventKey::parse(&format!("campaign-{}", row.campaign_id))?;
                let new = NewTicketEvent::new(key, title.clone(), i64::from(quantity), None, from, until)?;
                let event = store::ticket_events::insert(&mut *tx, &new).await?;
                Ok((PrizeRef::Ticket(event.event_key.clone()), Some(event)))
            }
            PrizeKind::Coupon => {
                let short = &row.campaign_id.simple().to_string()[..12];
                let event = store::events::insert(
                    &mut *tx,
                    &actor,
                    &store::events::EventFields {
                        event_name: format!("{title} ({short})"),
                        description: row.participation_method.clone().unwrap_or_default(),
                        from_at: from,
                        until_at: until,
                        event_status: Some(EventStatus::Ongoing),
                    },
                    EventStatus::Ongoing,
                )
                .await?;
                let inventory = store::coupon_inventories::insert(
                    &mut *tx,
                    &actor,
                    &store::coupon_inventories::InventoryFields {
                        event_id: event.event_id,
                        inventory_name: title.clone(),
                        usable_from_at: from,
                        usable_until_at: until,
                        total_count: i64::from(quantity),
                        inventory_status: Some(InventoryStatus::Ready),
                        discount: None,
                    },
                    InventoryStatus::Ready,
                )
                .await?;
                let batch = store::coupon_batches::insert(
                    &mut *tx,
                    &actor,
                    inventory.inventory_id,
                    1,
                    &store::coupon_batches::BatchFields {
                        batch_name: title.clone(),
                        issue_count: i64::from(quantity),
                        issue_type: IssueType::SelfIssued,
                        valid_from_at: from,
                        valid_until_at: until,
                        batch_status: Some(BatchStatus::Ready),
                        daily_limit: None,
                        admission: Default::default(),
                        shards: None,
                    },
                    BatchStatus::Ready,
                )
                .await?;
                Ok((PrizeRef::Coupon(batch.batch_id), None))
            }
        }
    }

    /// Calls each selected channel that does not hold the campaign yet and records its answer;
    /// channels that hold it answer from the record.
    async fn distribute(
        &self,
        row: &CampaignRow,
        selected: &[SelectedChannel],
    ) -> Result<Vec<Outcome>, Error> {
        let db = self.engine.db();
        let held: Vec<ChannelRow> = store::campaign_channels::of(db, row.campaign_id).await?;
        let holds = |t: ChannelType| {
            held.iter()
                .find(|h| h.channel_type == t && h.status == DistributionStatus::Success)
        };
        let deliveries: Vec<Delivery> = selected
            .iter()
            .filter(|s| holds(s.channel_type).is_none())
            .map(|s| Delivery {
                campaign_id: row.campaign_id,
                channel_type: s.channel_type,
                title: row.title.clone().unwrap_or_default(),
                prize: row.prize_name.clone().unwrap_or_default(),
                participation_method: row.participation_method.clone().unwrap_or_default(),
                image_url: row.selected_image_id.map(|i| self.image_url(i)),
                start_date: row.start_date,
                end_date: row.end_date,
                claim_url: self.claim_url(row),
                settings: if s.settings.is_null() {
                    serde_json::json!({})
                } else {
                    s.settings.clone()
                },
            })
            .collect();
        let sent = self.distributor.send_all(&deliveries).await;
        let now = Utc::now();
        for (d, o) in deliveries.iter().zip(&sent) {
            store::campaign_channels::upsert(
                db,
                row.campaign_id,
                &ChannelRow {
                    channel_type: o.channel_type,
                    status: o.status,
                    settings: d.settings.clone(),
                    distribution_id: o.distribution_id.clone(),
                    estimated_reach: o.estimated_reach,
                    error: o.error.clone(),
                    updated_at: now,
                },
            )
            .await?;
        }
        Ok(selected
            .iter()
            .map(|s| match holds(s.channel_type) {
                Some(h) => Outcome {
                    channel_type: h.channel_type,
                    status: h.status,
                    distribution_id: h.distribution_id.clone(),
                    estimated_reach: h.estimated_reach,
                    error: None,
                },
                None => sent
                    .iter()
                    .find(|o| o.channel_type == s.channel_type)
                    .cloned()
                    .expect("every channel not held was sent"),
            })
            .collect())
    }

    /// Where a participant claims the prize.
    pub fn claim_url(&self, row: &CampaignRow) -> String {
        let base = self.options.public_url.trim_end_matches('/');
        match (&row.event_key, row.coupon_batch_id) {
            (Some(key), _) => format!("{base}/events/{key}/tickets"),
            (None, Some(batch)) => format!("{base}/api/v1/coupons/{batch}/issue"),
            _ => String::new(),
        }
    }
}

/// The banner id in one of our banner URLs (any host: a proxy may have rewritten it).
pub fn image_of_url(url: &str) -> Option<Uuid> {
    let path = url.split(['?', '#']).next()?;
    let (_, id) = path.rsplit_once(IMAGE_PATH)?;
    Uuid::parse_str(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_urls_are_recognised_on_any_host() {
        let id = Uuid::now_v7();
        assert_eq!(
            image_of_url(&format!("http://a.example{IMAGE_PATH}{id}")),
            Some(id)
        );
        assert_eq!(image_of_url(&format!("{IMAGE_PATH}{id}?v=1")), Some(id));
        assert_eq!(image_of_url(&format!("http://a.example/other/{id}")), None);
        assert_eq!(image_of_url("not a url"), None);
    }
}
