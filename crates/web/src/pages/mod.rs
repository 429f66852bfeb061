//! The web panel: server-rendered pages (minijinja + Bootstrap + htmx). Modules by
//! screen; each exposes `router()`. Tenant pages live under `/t/{slug}/…`; membership is
//! checked on every request (a stranger gets 404, an operator 403 on admin pages).

pub mod account;
pub mod auth;
pub mod bot;
pub mod canned;
pub mod commands;
pub mod dashboard;
pub mod desk;
mod extract;
pub mod learning;
pub mod logs;
pub mod menus;
pub mod platform;
pub mod rules;
pub mod sentences;
pub mod settings;
pub mod stats;
pub mod team;
pub mod try_it;

pub use extract::{Member, SignedIn, Viewer};

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Router;
use serde_json::{json, Value};
use switchboard_core::validate::{Invalid, Problem};
use switchboard_core::{Permission, Role};
use switchboard_db::accounts::{self, MembershipOf};
use switchboard_db::platform::Tenant;

use crate::i18n::{Catalogs, UiLang};
use crate::session::{self, AuthSession, WebUser};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(account::router())
        .merge(dashboard::router())
        .merge(desk::router())
        .merge(canned::router())
        .merge(bot::router())
        .merge(learning::router())
        .merge(logs::router())
        .merge(stats::router())
        .merge(rules::router())
        .merge(menus::router())
        .merge(commands::router())
        .merge(settings::router())
        .merge(team::router())
        .merge(try_it::router())
        .merge(platform::router())
}

// Errors -------------------------------------------------------------------------------

/// What went wrong, as the person sees it. Rendered into a page by [`render_errors`].
#[derive(Debug)]
pub enum PageError {
    NotFound,
    Forbidden,
    /// Sign in first, then come back to this path.
    Login(String),
    BadRequest(String),
    /// Something we depend on (Telegram) failed.
    Upstream(String),
    Internal,
    /// An application error that is not a form's to show (a conflict, an unreachable
    /// database, …): its status, and its problem in the reader's language.
    App(switchboard_app::AppError),
}

/// Marks a response whose body [`render_errors`] should replace with the error page.
#[derive(Clone, Debug)]
struct ErrorPage(StatusCode, Option<String>, Option<Problem>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, detail) = match self {
            PageError::Login(next) => {
                let target = format!("/login?next={}", urlencode(&next));
                return Redirect::to(&target).into_response();
            }
            PageError::NotFound => (StatusCode::NOT_FOUND, None),
            PageError::Forbidden => (StatusCode::FORBIDDEN, None),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, Some(m)),
            PageError::Upstream(m) => (StatusCode::BAD_GATEWAY, Some(m)),
            PageError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
            PageError::App(e) => {
                let status = crate::error::status_of(&e);
                let problem = match e {
                    // Their pages say it already, without details.
                    switchboard_app::AppError::NotFound
                    | switchboard_app::AppError::Forbidden
                    | switchboard_app::AppError::Internal => None,
                    e => Some(e.problem()),
                };
                let mut r = status.into_response();
                r.extensions_mut().insert(ErrorPage(status, None, problem));
                return r;
            }
        };
        let mut r = status.into_response();
        r.extensions_mut().insert(ErrorPage(status, detail, None));
        r
    }
}

impl From<switchboard_db::DbError> for PageError {
    fn from(e: switchboard_db::DbError) -> Self {
        switchboard_app::AppError::from(e).into()
    }
}

impl From<switchboard_app::AppError> for PageError {
    fn from(e: switchboard_app::AppError) -> Self {
        match e {
            switchboard_app::AppError::NotFound => PageError::NotFound,
            switchboard_app::AppError::Forbidden => PageError::Forbidden,
            e => PageError::App(e),
        }
    }
}

impl From<minijinja::Error> for PageError {
    fn from(e: minijinja::Error) -> Self {
        tracing::error!(error = %e, "page: template error");
        PageError::Internal
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Replaces the body of error responses from pages with a rendered error page.
pub async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let accept_lang = reader_lang(&req);
    let page_view = is_page_view(&req);
    let response = next.run(req).await;
    let Some(ErrorPage(status, detail, problem)) =
        response.extensions().get::<ErrorPage>().cloned()
    else {
        return bare_error_page(&state, accept_lang, page_view, response).await;
    };
    let detail =
        detail.or_else(|| problem.map(|p| problem_text_in(&state.web.catalogs, accept_lang, &p)));
    error_page(&state, accept_lang, status, detail).unwrap_or(response)
}

/// The error page for `status` in `lang` (`None` if the template itself failed: logged).
fn error_page(
    state: &AppState,
    lang: UiLang,
    status: StatusCode,
    detail: Option<String>,
) -> Option<Response> {
    let ctx = json!({"lang": lang.code(), "status": status.as_u16(), "detail": detail});
    match state
        .web
        .templates
        .render("errors/error.html", minijinja::Value::from_serialize(&ctx))
    {
        Ok(html) => Some((status, Html(html)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "the error page itself failed");
            None
        }
    }
}

/// The fallback of the whole application: a person's page view of an address no route
/// has gets the error page; the API, the webhook and the rest a bare 404.
pub async fn no_such_address(State(state): State<AppState>, req: Request) -> Response {
    let lang = reader_lang(&req);
    let page_view = is_page_view(&req);
    bare_error_page(
        &state,
        lang,
        page_view,
        StatusCode::NOT_FOUND.into_response(),
    )
    .await
}

/// The language an error page is shown in: the browser's (`Accept-Language`), else English.
fn reader_lang(req: &Request) -> UiLang {
    req.headers()
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(UiLang::from_accept_language)
        .unwrap_or(UiLang::En)
}

/// A GET of a page by a browser (not htmx, not the API, the webhook or a static file).
fn is_page_view(req: &Request) -> bool {
    let path = req.uri().path();
    req.method() == axum::http::Method::GET
        && !req.headers().contains_key("hx-request")
        && !["/api/", "/telegram/", "/static/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// A page address no handler answered with a page of its own — no route has it, or a part
/// of the path does not parse (`/rules/not-an-id`) — gets the error page rather than a
/// bare status or the framework's text: "not found" either way, since no such page exists.
async fn bare_error_page(
    state: &AppState,
    lang: UiLang,
    page_view: bool,
    response: Response,
) -> Response {
    let status = response.status();
    let html = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !page_view || html || !matches!(status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4096).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    if status == StatusCode::BAD_REQUEST && !bytes.starts_with(b"Invalid URL") {
        // A query or form that does not parse: its own message, as it was.
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    error_page(state, lang, StatusCode::NOT_FOUND, None)
        .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

// Rendering -------------------------------------------------------------------------------

/// Renders a page with the layout's context: who is signed in, their organizations, the
/// current one and what their role allows, the CSRF token, one-time messages.
pub async fn render(
    state: &AppState,
    viewer: &Viewer,
    member: Option<&Member>,
    template: &str,
    ctx: Value,
) -> PageResult {
    let flashes = session::take_flashes(&viewer.auth.session).await;
    let memberships = match (member, &viewer.user) {
        (Some(m), _) => m.memberships.clone(),
        (None, Some(u)) => accounts::memberships_of(&state.pool, u.id).await?,
        (None, None) => Vec::new(),
    };
    // A desk page that already counted the viewer's whole queue passes its counts.
    let desk_counts = match (ctx.get("desk_counts"), &viewer.user) {
        (Some(counts), _) => counts.clone(),
        (None, Some(u)) if !memberships.is_empty() => {
            desk::nav_counts(state, u.id, &memberships).await?
        }
        _ => Value::Null,
    };
    let mut base = json!({
        "desk_counts": desk_counts,
        "lang": viewer.lang.code(),
        "csrf": viewer.csrf,
        "path": viewer.path,
        "flashes": flashes,
        "tenants": memberships,
        "dev_mailbox": state.web.mailer.is_dev_mailbox(),
        "user": viewer.user.as_ref().map(|u| json!({
            "id": u.id, "email": u.email, "name": u.name(), "is_superuser": u.is_superuser,
            "has_password": u.has_password,
        })),
    });
    if let Some(m) = member {
        base["tenant"] = json!({"id": m.tenant.id, "slug": m.tenant.slug, "name": m.tenant.name, "status": m.tenant.status});
        base["role"] = json!(m.role.as_str());
        base["can"] = json!({
            "configure": m.role.can(Permission::WriteConfig),
            "manage_team": m.role.can(Permission::ManageTeam),
            "own": m.role.can(Permission::OwnTenant),
        });
    }
    if let (Value::Object(b), Value::Object(extra)) = (&mut base, ctx) {
        b.extend(extra);
    }
    let html = state
        .web
        .templates
        .render(template, minijinja::Value::from_serialize(&base))?;
    let mut response = Html(html).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Renders one block of a template for an htmx swap.
pub fn render_block(
    state: &AppState,
    viewer: &Viewer,
    template: &str,
    block: &str,
    ctx: Value,
) -> PageResult {
    let mut base = json!({"lang": viewer.lang.code(), "csrf": viewer.csrf});
    if let (Value::Object(b), Value::Object(extra)) = (&mut base, ctx) {
        b.extend(extra);
    }
    let html = state.web.templates.render_block(
        template,
        block,
        minijinja::Value::from_serialize(&base),
    )?;
    Ok(Html(html).into_response())
}

/// Field errors as `{"field": "message"}` for the form macros, in the reader's language.
pub fn field_errors(state: &AppState, viewer: &Viewer, invalid: &Invalid) -> Value {
    let mut map = serde_json::Map::new();
    for e in &invalid.errors {
        map.entry(e.field.clone())
            .or_insert_with(|| json!(problem_text(state, viewer, &e.problem)));
    }
    Value::Object(map)
}

/// A validation problem in the reader's language: the catalogue's `err.<code>` with the
/// problem's numbers, named by item or button where it has one.
pub fn problem_text(state: &AppState, viewer: &Viewer, problem: &Problem) -> String {
    problem_text_in(&state.web.catalogs, viewer.lang, problem)
}

/// [`problem_text`] for a language known without a viewer (the error page).
pub fn problem_text_in(catalogs: &Catalogs, lang: UiLang, problem: &Problem) -> String {
    let args: Vec<(&str, String)> = problem
        .params
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let key = format!("err.{}", problem.code);
    let text = if problem.code != "custom" && catalogs.has(lang, &key) {
        catalogs.t(lang, &key, &args)
    } else {
        // A message written for people already (or a code without a translation yet).
        problem.message_without_names()
    };
    let text = match problem.param("item") {
        Some(item) => catalogs.t(
            lang,
            "err.item",
            &[("item", item.to_string()), ("error", text)],
        ),
        None => text,
    };
    match problem.param("button") {
        Some(label) => format!("“{label}”: {text}"),
        None => text,
    }
}

/// Redirect after a successful form (post/redirect/get), with a one-time message.
pub async fn done(viewer: &Viewer, to: &str, message: String) -> PageResult {
    done_as(viewer, to, "success", message).await
}

/// [`done`] with a message of another kind (`warning`, `info`).
pub async fn done_as(viewer: &Viewer, to: &str, kind: &str, message: String) -> PageResult {
    session::flash(&viewer.auth.session, kind, message).await;
    if viewer.htmx {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut().insert(
            "hx-redirect",
            HeaderValue::from_str(to).map_err(|_| PageError::Internal)?,
        );
        return Ok(r);
    }
    Ok(Redirect::to(to).into_response())
}

/// A message in the viewer's language.
pub fn t(state: &AppState, viewer: &Viewer, key: &str, args: &[(&str, String)]) -> String {
    state.web.catalogs.t(viewer.lang, key, args)
}

/// Only paths on this site are allowed as "come back here" targets, judged as a browser
/// reads a URL: it drops tabs and line breaks and treats a backslash like `/`, so
/// `/<tab>/evil.example` or `/<backslash>evil.example` would lead to another host.
/// Anything with control characters or whitespace is refused (it could not be a header
/// value either).
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let n = next?;
    let clean = n.starts_with('/')
        && !n
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && !n.starts_with("//")
        && n.len() <= 2048;
    clean.then(|| n.to_string())
}

/// A form body as ordered pairs, for forms with repeated fields (lists, button rows).
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("on" | "true" | "1" | "yes"))
    }

    /// Non-empty lines of a textarea.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Fields {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::BadRequest("the form could not be read".into()))?;
        Ok(Fields(
            url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// Button rows posted by the buttons editor: parallel lists `b_row`, `b_id`, `b_label`,
/// `b_action`, `b_target` (one entry per button, in display order).
pub fn posted_buttons(fields: &Fields) -> Vec<Vec<switchboard_app::buttons::ButtonInput>> {
    let rows = fields.all("b_row");
    let ids = fields.all("b_id");
    let labels = fields.all("b_label");
    let actions = fields.all("b_action");
    let targets = fields.all("b_target");
    // A label per other language: `b_label.ru`, one per button like the rest.
    let labels_in: Vec<(switchboard_core::text::Lang, Vec<&str>)> =
        switchboard_core::text::Lang::ALL
            .into_iter()
            .map(|l| (l, fields.all(&format!("b_label.{}", l.code()))))
            .collect();
    let mut out: Vec<(String, Vec<switchboard_app::buttons::ButtonInput>)> = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let label = label.trim();
        if label.is_empty() {
            continue;
        }
        let row = rows.get(i).copied().unwrap_or("0").to_string();
        let action = actions.get(i).copied().unwrap_or("text").to_string();
        let target = targets
            .get(i)
            .copied()
            .unwrap_or_default()
            .trim()
            .to_string();
        let uuid = |s: &str| uuid::Uuid::parse_str(s).ok();
        let mut translations = switchboard_core::Translations::new();
        for (lang, labels) in &labels_in {
            if let Some(l) = labels.get(i) {
                translations.set(*lang, "label", l);
            }
        }
        let button = switchboard_app::buttons::ButtonInput {
            translations,
            id: ids.get(i).and_then(|s| uuid(s)),
            label: label.to_string(),
            rule_id: (action == "rule").then(|| uuid(&target)).flatten(),
            menu_id: (action == "submenu").then(|| uuid(&target)).flatten(),
            url: (action == "url").then(|| target.clone()),
            text: (action == "text").then(|| target.clone()),
            action,
        };
        match out.iter_mut().find(|(r, _)| *r == row) {
            Some((_, buttons)) => buttons.push(button),
            None => out.push((row, vec![button])),
        }
    }
    out.into_iter().map(|(_, b)| b).collect()
}

/// Rows of buttons as the editor shows them.
pub fn editor_rows(rows: &[Vec<switchboard_app::buttons::ButtonInput>]) -> Value {
    json!(rows
        .iter()
        .map(|row| row
            .iter()
            .map(|b| json!({
                "id": b.id, "label": b.label, "action": b.action,
                "target": b.rule_id.map(|r| r.to_string())
                    .or_else(|| b.menu_id.map(|m| m.to_string()))
                    .or_else(|| b.url.clone())
                    .or_else(|| b.text.clone())
                    .unwrap_or_default(),
                "translations": b.translations,
            }))
            .collect::<Vec<_>>())
        .collect::<Vec<_>>())
}

/// Domain button rows → the editor's shape.
pub fn editor_rows_of(rows: &[Vec<switchboard_core::bot::Button>]) -> Value {
    use switchboard_core::bot::ButtonAction;
    json!(rows
        .iter()
        .map(|row| row
            .iter()
            .map(|b| {
                let target = match &b.action {
                    ButtonAction::Rule { rule_id } => rule_id.0.to_string(),
                    ButtonAction::Submenu { menu_id } => menu_id.0.to_string(),
                    ButtonAction::Url { url } => url.clone(),
                    ButtonAction::Text { text } => text.clone(),
                    ButtonAction::Handover => String::new(),
                };
                json!({"id": b.id.0, "label": b.label, "action": b.action.kind(),
                       "target": target, "translations": b.translations})
            })
            .collect::<Vec<_>>())
        .collect::<Vec<_>>())
}

/// The languages an editor offers the organization's words in, beside its default
/// language: every other language, and the default one too where words were stored for
/// it (after a change of the default language), so that saving loses nothing. `stored`
/// are the translations (as JSON) of what the page edits.
pub async fn translation_langs<'a>(
    state: &AppState,
    member: &Member,
    stored: impl IntoIterator<Item = &'a Value>,
) -> PageResult<Value> {
    use switchboard_core::text::Lang;
    let default = switchboard_app::settings::get(&state.app, &member.ctx())
        .await?
        .lang();
    let stored = stored
        .into_iter()
        .filter_map(|t| serde_json::from_value::<switchboard_core::Translations>(t.clone()).ok());
    let mut langs: Vec<Lang> = Lang::ALL.into_iter().filter(|l| *l != default).collect();
    for t in stored {
        for l in t.languages() {
            if !langs.contains(&l) {
                langs.push(l);
            }
        }
    }
    Ok(json!(langs
        .iter()
        .map(|l| json!({"code": l.code(), "name": t(state, &member.viewer, &format!("lang.{}", l.code()), &[])}))
        .collect::<Vec<_>>()))
}

/// The translations of an object and of its buttons (`rows` as the buttons editor has
/// them), for [`translation_langs`].
pub fn with_buttons<'a>(own: &'a Value, rows: &'a Value) -> impl Iterator<Item = &'a Value> {
    let labels = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(|b| &b["translations"]);
    std::iter::once(own).chain(labels)
}

/// Translations posted by an editor: `translations.<lang>.<field>` for each of `names`.
pub fn posted_translations(fields: &Fields, names: &[&str]) -> switchboard_core::Translations {
    let mut out = switchboard_core::Translations::new();
    for lang in switchboard_core::text::Lang::ALL {
        for name in names {
            if let Some(v) = fields.get(&format!("translations.{}.{name}", lang.code())) {
                out.set(lang, name, v);
            }
        }
    }
    out
}

/// Rules and menus a button can point at (for the editor's pickers).
pub async fn button_targets(state: &AppState, member: &Member) -> PageResult<Value> {
    let rules = switchboard_app::rules::all(&state.app, &member.ctx()).await?;
    let (menus, _) = switchboard_app::menus::list(&state.app, &member.ctx()).await?;
    Ok(json!({
        "rules": rules.iter().map(|r| json!({"id": r.id, "title": r.title})).collect::<Vec<_>>(),
        "menus": menus.iter().map(|m| json!({"id": m.id, "name": m.name})).collect::<Vec<_>>(),
    }))
}
