//! The REST API, `/api/v1`: JSON in and out, authenticated by personal API tokens, every
//! operation scoped to the token's tenant. The OpenAPI document is generated from the
//! handlers themselves (utoipa), so it cannot drift from the code.

pub mod bot;
pub mod buttons;
pub mod canned;
pub mod commands;
pub mod conversations;
pub mod end_users;
pub mod menus;
pub mod rules;
pub mod settings;
pub mod stats;
pub mod team;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        version = "1",
        description = "Configure a tenant's Telegram helpdesk bot and work its conversations. \
            Authenticate with `Authorization: Bearer <token>` (a personal API token, created \
            with `switchboard token create`). Errors are `{\"error\": {\"code\", \"message\"}}`; \
            another organization's objects are always 404."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(bot::router())
        .merge(settings::router())
        .merge(rules::router())
        .merge(menus::router())
        .merge(commands::router())
        .merge(canned::router())
        .merge(conversations::router())
        .merge(end_users::router())
        .merge(stats::router())
        .merge(team::router())
}

/// The OpenAPI document of `/api/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi_router().split_for_parts().1
}

pub fn router() -> Router<AppState> {
    let (router, doc) = openapi_router().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    router.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}

/// JSON body whose rejections are API errors.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state)
            .await
            .map_err(|e: JsonRejection| ApiError::from(e))?;
        Ok(ApiJson(value))
    }
}

/// Path parameters; a malformed id is a 404.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(v) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| ApiError::from(e))?;
        Ok(ApiPath(v))
    }
}

/// Query parameters whose rejections are API errors.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| ApiError::from(e))?;
        Ok(ApiQuery(v))
    }
}

/// `{"items": [...]}`
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// A page size: default 50, at most 200.
pub fn page_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 200)
}

#[cfg(test)]
mod tests {
    /// Generated clients read parameters from the document: a query parameter declared
    /// `in: path` (or a path segment not declared) breaks them.
    #[test]
    fn every_parameter_is_where_the_document_says() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut wrong = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                for p in &params {
                    let name = p["name"].as_str().unwrap();
                    let in_path = path.contains(&format!("{{{name}}}"));
                    match (p["in"].as_str().unwrap(), in_path) {
                        ("path", false) => {
                            wrong.push(format!("{method} {path}: {name} is no path segment"))
                        }
                        ("query", true) => {
                            wrong.push(format!("{method} {path}: {name} is a path segment"))
                        }
                        ("path", true) if p["required"] != true => {
                            wrong.push(format!("{method} {path}: {name} must be required"))
                        }
                        _ => {}
                    }
                }
                for segment in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = segment.trim_matches(|c| c == '{' || c == '}');
                    if !params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")
                    {
                        wrong.push(format!("{method} {path}: {name} is not declared"));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
