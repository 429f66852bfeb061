//! Who is asking: any visitor ([`Viewer`]: language, CSRF token), a signed-in one
//! ([`SignedIn`], else to the login page and back), a member of the organization in the
//! path ([`Member`]: a stranger gets 404, a role too small 403).

use super::*;

/// Any visitor: maybe signed in, with their language and CSRF token.
pub struct Viewer {
    pub auth: AuthSession,
    pub user: Option<WebUser>,
    pub lang: UiLang,
    pub csrf: String,
    pub path: String,
    pub htmx: bool,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut auth = AuthSession::from_request_parts(parts, state)
            .await
            .map_err(|(_, m)| {
                tracing::error!(error = m, "session unavailable");
                PageError::Internal
            })?;
        // The absolute lifetime of a sign-in, whatever the activity.
        if auth.user.is_some() {
            let login_at: Option<i64> = auth.session.get(session::LOGIN_AT).await.ok().flatten();
            let max = state.web.session_max_age.as_secs() as i64;
            if login_at.is_none_or(|t| chrono::Utc::now().timestamp() - t > max) {
                let _ = auth.logout().await;
            }
        }
        let user = auth.user.clone();
        let lang = session::request_lang(parts, user.as_ref(), &auth.session).await;
        let csrf = session::csrf_token(&auth.session).await;
        Ok(Viewer {
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            htmx: parts.headers.contains_key("hx-request"),
            auth,
            user,
            lang,
            csrf,
        })
    }
}

/// A signed-in visitor (else: to the login page and back): the viewer and their user.
pub struct SignedIn(pub Viewer, pub WebUser);

impl SignedIn {
    pub fn user(&self) -> &WebUser {
        &self.1
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        match viewer.user.clone() {
            Some(user) => Ok(SignedIn(viewer, user)),
            None => Err(PageError::Login(viewer.path.clone())),
        }
    }
}

/// A member of the tenant named by `{slug}` in the path.
pub struct Member {
    pub viewer: Viewer,
    pub user: WebUser,
    pub tenant: Tenant,
    pub role: Role,
    pub memberships: Vec<MembershipOf>,
}

impl Member {
    pub fn user(&self) -> &WebUser {
        &self.user
    }

    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(PageError::Forbidden)
        }
    }

    /// Who acts, for the application layer.
    pub fn ctx(&self) -> switchboard_app::Ctx {
        switchboard_app::Ctx {
            tenant: self.tenant.id,
            user: self.user().id,
            role: self.role,
            via_api: false,
        }
    }

    /// `/t/{slug}{rest}`
    pub fn url(&self, rest: &str) -> String {
        format!("/t/{}{rest}", self.tenant.slug)
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let SignedIn(viewer, user) = SignedIn::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| PageError::NotFound)?;
        let slug = params
            .iter()
            .find(|(k, _)| *k == "slug")
            .map(|(_, v)| v.to_string())
            .ok_or(PageError::NotFound)?;
        let memberships = accounts::memberships_of(&state.pool, user.id).await?;
        let Some(m) = memberships.iter().find(|m| m.slug == slug).cloned() else {
            return Err(PageError::NotFound);
        };
        if m.status != switchboard_core::TenantStatus::Active && !user.is_superuser {
            return Err(PageError::BadRequest(
                "This organization is suspended. Contact the platform administrators.".into(),
            ));
        }
        let tenant = switchboard_db::platform::get_tenant(&state.pool, m.tenant_id).await?;
        Ok(Member {
            viewer,
            user,
            tenant,
            role: m.role,
            memberships,
        })
    }
}
