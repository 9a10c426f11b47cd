//! `GET /api/v1/products/best` (alias `/api/v1/products/top`): the latest best-products
//! snapshot, no token needed. Before the first snapshot, `items` is empty and `day` null.

use axum::{Json, extract::State};
use serde::Serialize;
use shop::best_products::{self, RANGE_DAYS};
use store::best_products::Snapshot;
use utoipa::ToSchema;

use crate::{error::ApiError, state::AppState};

/// A ranked product.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BestItemView {
    rank: i32,
    product_id: i64,
    name: String,
    sold_qty: i64,
}

/// `{rangeDays, items, day, from, to, computedAt}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BestView {
    range_days: u32,
    items: Vec<BestItemView>,
    /// The KST day the snapshot was computed for.
    day: Option<String>,
    /// Window start (KST, inclusive).
    from: Option<String>,
    /// Window end (KST, exclusive).
    to: Option<String>,
    #[schema(format = DateTime)]
    computed_at: Option<String>,
}

impl From<Option<Snapshot>> for BestView {
    fn from(s: Option<Snapshot>) -> Self {
        let kst = issuance_core::clock::format_kst;
        match s {
            None => Self {
                range_days: RANGE_DAYS,
                items: Vec::new(),
                day: None,
                from: None,
                to: None,
                computed_at: None,
            },
            Some(s) => Self {
                range_days: u32::try_from(s.range_days).unwrap_or(RANGE_DAYS),
                items: s
                    .items
                    .into_iter()
                    .map(|i| BestItemView {
                        rank: i.rank,
                        product_id: i.product_id,
                        name: i.name,
                        sold_qty: i.sold_qty,
                    })
                    .collect(),
                day: Some(s.day.to_string()),
                from: Some(kst(s.range_from)),
                to: Some(kst(s.range_to)),
                computed_at: Some(kst(s.computed_at)),
            },
        }
    }
}

/// The latest snapshot.
#[utoipa::path(
    get, path = "/api/v1/products/best", tag = "shop", security(()),
    responses((status = 200, description = "The newest snapshot (empty before the first)", body = BestView))
)]
pub async fn show(State(st): State<AppState>) -> Result<Json<BestView>, ApiError> {
    Ok(Json(best_products::latest(st.engine.db()).await?.into()))
}
