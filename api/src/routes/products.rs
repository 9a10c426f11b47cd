//! Product reads for shoppers (no token): `GET /api/v1/products` (keyset cursor) and
//! `GET /api/v1/products/{productId}`.

use axum::{Json, extract::State};
use issuance_core::enums::ProductStatus;
use serde::{Deserialize, Serialize};
use store::products::Product;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ApiError, ErrorBody},
    extract::{AppPath, AppQuery},
    state::AppState,
};

/// `?keyword=&cursor=&limit=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    keyword: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// A product in the list.
#[derive(Serialize, ToSchema)]
#[schema(as = ProductItemView)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    product_id: i64,
    name: String,
    price: i64,
    stock: i32,
    status: ProductStatus,
}

/// `{items, nextCursor}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListView {
    items: Vec<ItemView>,
    next_cursor: Option<String>,
}

/// One product.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailView {
    product_id: i64,
    name: String,
    price: i64,
    stock: i32,
    status: ProductStatus,
    description: String,
    images: Vec<String>,
}

/// A page of products by id.
#[utoipa::path(
    get, path = "/api/v1/products", tag = "shop", security(()), params(ListQuery),
    responses((status = 200, description = "A page of products by id", body = ListView))
)]
pub async fn list(
    State(st): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<ListView>, ApiError> {
    let page =
        shop::products::list(st.engine.db(), q.keyword.as_deref(), q.cursor.as_deref(), q.limit).await?;
    Ok(Json(ListView {
        items: page
            .items
            .into_iter()
            .map(|p: Product| ItemView {
                product_id: p.product_id,
                name: p.name,
                price: p.price,
                stock: p.stock,
                status: p.status,
            })
            .collect(),
        next_cursor: page.next,
    }))
}

/// One product with its description and images.
#[utoipa::path(
    get, path = "/api/v1/products/{productId}", tag = "shop", security(()),
    params(("productId" = i64, Path, minimum = 1, description = "The product")),
    responses(
        (status = 200, description = "The product", body = DetailView),
        (status = 404, description = "`PRODUCT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    AppPath(product_id): AppPath<i64>,
) -> Result<Json<DetailView>, ApiError> {
    let p = shop::products::find(st.engine.db(), product_id).await?;
    Ok(Json(DetailView {
        product_id: p.product_id,
        name: p.name,
        price: p.price,
        stock: p.stock,
        status: p.status,
        description: p.description,
        images: p.images,
    }))
}
