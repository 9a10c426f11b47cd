//! `/api/v1/admin/users` and `/api/v1/admin/products`: create, list, get.

use admin::catalog;
use axum::{Json, extract::State, http::StatusCode};
use issuance_core::{
    enums::{ProductStatus, UserChannel},
    paging::Page,
};
use serde::{Deserialize, Serialize};
use store::{
    products::{CatalogFilter, NewProduct, Product},
    users::{NewUser, User},
};
use utoipa::{IntoParams, ToSchema};

use crate::params::{keyword, kst, paging};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppJson, AppPath, AppQuery},
    state::AppState,
};

/// `POST /users` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "홍길동", "email": "hong@example.com", "channel": "APP"}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserBody {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    channel: Option<UserChannel>,
}

/// A user.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    user_id: i64,
    name: String,
    email: Option<String>,
    channel: UserChannel,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            user_id: u.user_id,
            name: u.name,
            email: u.email,
            channel: u.channel,
            created_at: kst(u.created_at),
        }
    }
}

/// `POST /products` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "텀블러", "description": "500ml", "price": 15000, "stock": 100, "status": "ON_SALE", "images": ["https://example.com/tumbler.png"]}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductBody {
    name: String,
    #[serde(default)]
    description: Option<String>,
    price: i64,
    stock: i64,
    #[serde(default)]
    status: Option<ProductStatus>,
    #[serde(default)]
    images: Vec<String>,
}

/// A product.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    product_id: i64,
    name: String,
    description: String,
    price: i64,
    stock: i32,
    status: ProductStatus,
    images: Vec<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        Self {
            product_id: p.product_id,
            name: p.name,
            description: p.description,
            price: p.price,
            stock: p.stock,
            status: p.status,
            images: p.images,
            created_at: kst(p.created_at),
            updated_at: kst(p.updated_at),
        }
    }
}

/// List query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    keyword: Option<String>,
    status: Option<ProductStatus>,
    #[param(minimum = 0)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
}

impl ListParams {
    fn filter(self) -> Result<CatalogFilter, ApiError> {
        Ok(CatalogFilter {
            keyword: keyword(self.keyword),
            status: self.status,
            paging: paging(self.page, self.size)?,
        })
    }
}

/// `POST /users` → 201.
#[utoipa::path(
    post, path = "/api/v1/admin/users", tag = "admin", request_body = UserBody,
    responses(
        (status = 201, description = "Created", body = UserView),
    )
)]
pub async fn create_user(
    State(st): State<AppState>,
    _admin: Admin,
    AppJson(body): AppJson<UserBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = catalog::create_user(
        st.engine.db(),
        NewUser {
            name: body.name,
            email: body.email,
            channel: body.channel,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// `GET /users/{id}`.
#[utoipa::path(
    get, path = "/api/v1/admin/users/{userId}", tag = "admin", params(("userId" = i64, Path, minimum = 1, description = "The user")),
    responses(
        (status = 200, description = "OK", body = UserView),
        (status = 404, description = "`USER_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show_user(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(catalog::find_user(st.engine.db(), id).await?.into()))
}

/// `GET /users`.
#[utoipa::path(
    get, path = "/api/v1/admin/users", tag = "admin", params(ListParams),
    responses(
        (status = 200, description = "OK", body = Page<UserView>),
    )
)]
pub async fn list_users(
    State(st): State<AppState>,
    _admin: Admin,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<Json<Page<UserView>>, ApiError> {
    Ok(Json(
        store::users::list(st.engine.db(), &q.filter()?)
            .await?
            .map(UserView::from),
    ))
}

/// `POST /products` → 201.
#[utoipa::path(
    post, path = "/api/v1/admin/products", tag = "admin", request_body = ProductBody,
    responses(
        (status = 201, description = "Created", body = ProductView),
    )
)]
pub async fn create_product(
    State(st): State<AppState>,
    _admin: Admin,
    AppJson(body): AppJson<ProductBody>,
) -> Result<(StatusCode, Json<ProductView>), ApiError> {
    let product = catalog::create_product(
        st.engine.db(),
        NewProduct {
            name: body.name,
            description: body.description.unwrap_or_default(),
            price: body.price,
            stock: body.stock,
            status: body.status,
            images: body.images,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(product.into())))
}

/// `GET /products/{id}`.
#[utoipa::path(
    get, path = "/api/v1/admin/products/{productId}", tag = "admin", params(("productId" = i64, Path, minimum = 1, description = "The product")),
    responses(
        (status = 200, description = "OK", body = ProductView),
        (status = 404, description = "`PRODUCT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show_product(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<ProductView>, ApiError> {
    Ok(Json(catalog::find_product(st.engine.db(), id).await?.into()))
}

/// `GET /products`.
#[utoipa::path(
    get, path = "/api/v1/admin/products", tag = "admin", params(ListParams),
    responses(
        (status = 200, description = "OK", body = Page<ProductView>),
    )
)]
pub async fn list_products(
    State(st): State<AppState>,
    _admin: Admin,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<Json<Page<ProductView>>, ApiError> {
    Ok(Json(
        store::products::list(st.engine.db(), &q.filter()?)
            .await?
            .map(ProductView::from),
    ))
}
