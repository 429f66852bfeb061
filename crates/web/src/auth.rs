//! API authentication: `Authorization: Bearer <personal API token>`. The token's tenant
//! and its member's current role scope everything the request does.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use switchboard_core::vault::secret_digest;
use switchboard_core::{ApiTokenId, Permission, Role, TenantId, UserId};
use switchboard_db::platform;

use crate::error::ApiError;
use crate::AppState;

/// The member a request acts for.
#[derive(Clone, Debug)]
pub struct ApiPrincipal {
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
    pub token_id: ApiTokenId,
}

impl ApiPrincipal {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Who acts, for the application layer.
    pub fn ctx(&self) -> switchboard_app::Ctx {
        switchboard_app::Ctx {
            tenant: self.tenant,
            user: self.user,
            role: self.role,
            via_api: true,
        }
    }
}

impl FromRequestParts<AppState> for ApiPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("Send an API token: Authorization: Bearer <token>")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("The Authorization header must be: Bearer <token>")
            })?;
        let principal = platform::authenticate_token(&state.pool, &secret_digest(token))
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("The API token is invalid, expired or revoked")
            })?;
        let stale = principal
            .last_used_at
            .is_none_or(|t| chrono::Utc::now() - t > chrono::Duration::seconds(60));
        if stale {
            let pool = state.pool.clone();
            let (tenant, id) = (principal.tenant_id, principal.token_id);
            tokio::spawn(async move {
                if let Err(e) = platform::touch_api_token(&pool, tenant, id).await {
                    tracing::debug!(error = %e, "could not record token use");
                }
            });
        }
        Ok(ApiPrincipal {
            tenant: principal.tenant_id,
            user: principal.user_id,
            role: principal.role,
            token_id: principal.token_id,
        })
    }
}
