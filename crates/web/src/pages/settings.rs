//! The bot's texts (in the default language and, optionally, the other one), working
//! hours and time zone, the matcher's threshold; and, for owners, deleting the
//! organization.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use switchboard_app::settings;
use switchboard_core::bot::BotTexts;
use switchboard_core::hours::WorkingHours;
use switchboard_core::text::Lang;
use switchboard_core::Permission;
use switchboard_db::accounts;
use switchboard_db::config::{Settings, SettingsPatch};

use super::{done, field_errors, render, t, Fields, Member, PageError, PageResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/settings", get(page_get).post(save))
        .route("/t/{slug}/settings/delete", post(delete_tenant))
}

use switchboard_app::settings::{EXTRA_TEXTS, TEXTS};
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
    "Europe/Minsk",
    "Europe/Kyiv",
    "Asia/Almaty",
    "Asia/Tashkent",
    "Asia/Tbilisi",
    "Asia/Yerevan",
    "Asia/Baku",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Istanbul",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
];

fn other(lang: Lang) -> Lang {
    match lang {
        Lang::En => Lang::Ru,
        Lang::Ru => Lang::En,
    }
}

fn form_of(s: &Settings) -> Value {
    let texts = serde_json::to_value(s.texts()).expect("texts serialise");
    let second = other(s.lang());
    let overrides = s
        .translations
        .get(second.code())
        .cloned()
        .unwrap_or(json!({}));
    let hours = s.hours();
    let days: Vec<Value> = DAYS
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let first = hours.days[i].first();
            json!({"key": d, "open": first.is_some(),
                   "from": first.map(|f| f.0.clone()).unwrap_or_else(|| "09:00".into()),
                   "to": first.map(|f| f.1.clone()).unwrap_or_else(|| "18:00".into())})
        })
        .collect();
    json!({
        "texts": texts,
        "second_lang": second.code(),
        "translations": overrides,
        "second_defaults": serde_json::to_value(BotTexts::for_other_language(&s.texts(), s.lang(), second)).expect("texts serialise"),
        "default_language": s.default_language,
        "timezone": s.timezone,
        "always_open": hours.is_always_open(),
        "days": days,
        // Stored as `real`: shown as the two decimals the slider sets, not 0.20000000298….
        "answer_threshold": two_decimals(s.answer_threshold),
        "suggest_threshold": two_decimals(s.suggest_threshold),
        "synonyms": s.synonyms.join("\n"),
        "feedback_enabled": s.feedback_enabled,
        "rating_enabled": s.rating_enabled,
        "retention_days": s.retention_days,
        "raw_retention_days": s.raw_retention_days,
    })
}

async fn page(state: &AppState, member: &Member, form: Value, errors: Value) -> PageResult {
    render(
        state,
        &member.viewer,
        Some(member),
        "admin/settings.html",
        json!({"section": "settings", "form": form, "errors": errors, "text_fields": TEXTS.iter().chain(EXTRA_TEXTS.iter()).collect::<Vec<_>>(), "zones": ZONES}),
    )
    .await
}

async fn page_get(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::ReadConfig)?;
    let s = settings::get(&state.app, &member.ctx()).await?;
    page(&state, &member, form_of(&s), json!({})).await
}

/// Reads the form into a settings change and, for re-display, the form as typed.
fn patch_of(fields: &Fields, current: &Settings) -> (SettingsPatch, Value) {
    let text = |name: &str| Some(fields.text(name).trim().to_string());
    let lang = if fields.get("default_language") == Some("ru") {
        Lang::Ru
    } else {
        Lang::En
    };
    let second = other(lang);
    let mut translation = serde_json::Map::new();
    for name in TEXTS.iter().chain(EXTRA_TEXTS.iter()) {
        let v = fields.text(&format!("tr_{name}"));
        if !v.trim().is_empty() {
            translation.insert(name.to_string(), json!(v.trim()));
        }
    }
    let mut translations = current
        .translations
        .as_object()
        .cloned()
        .unwrap_or_default();
    translations.insert(
        second.code().to_string(),
        Value::Object(translation.clone()),
    );
    // The default language's texts without a column: kept when they differ from the
    // built-in ones.
    let defaults = serde_json::to_value(BotTexts::defaults(lang)).expect("texts serialise");
    let own: serde_json::Map<String, Value> = EXTRA_TEXTS
        .iter()
        .filter_map(|name| {
            let v = fields.text(name).trim().to_string();
            (!v.is_empty() && defaults[*name] != json!(v)).then(|| (name.to_string(), json!(v)))
        })
        .collect();
    translations.insert(lang.code().to_string(), Value::Object(own));
    let always = fields.flag("always_open");
    let mut hours = WorkingHours::default();
    let mut days = Vec::new();
    for (i, d) in DAYS.iter().enumerate() {
        let open = fields.flag(&format!("{d}_open"));
        let (from, to) = (
            fields.text(&format!("{d}_from")),
            fields.text(&format!("{d}_to")),
        );
        if open && !always {
            hours.days[i] = vec![(from.trim().to_string(), to.trim().to_string())];
        }
        days.push(json!({"key": d, "open": open, "from": from, "to": to}));
    }
    let patch = SettingsPatch {
        welcome_text: text("welcome_text"),
        help_text: text("help_text"),
        handover_text: text("handover_text"),
        closing_text: text("closing_text"),
        already_waiting_text: text("already_waiting_text"),
        stale_button_text: text("stale_button_text"),
        // The built-in text shown in the form is not the organization's own.
        offhours_text: text("offhours_text")
            .filter(|v| current.offhours_text.is_some() || *v != current.texts().offhours_text),
        answer_threshold: fields
            .text("answer_threshold")
            .trim()
            .parse()
            .ok()
            .or(Some(-1.0)),
        default_language: Some(lang.code().to_string()),
        translations: Some(Value::Object(translations)),
        timezone: Some(fields.text("timezone").trim().to_string()),
        working_hours: Some(if always || hours.is_always_open() {
            None
        } else {
            Some(serde_json::to_value(&hours).expect("hours serialise"))
        }),
        rating_enabled: Some(fields.flag("rating_enabled")),
        // Empty: the built-in text in the user's language.
        rating_text: text("rating_text").filter(|v| {
            !v.is_empty() && (current.rating_text.is_some() || *v != current.texts().rating_text)
        }),
        suggest_threshold: fields
            .get("suggest_threshold")
            .map(|v| v.trim().parse().unwrap_or(-1.0)),
        synonyms: fields.get("synonyms").map(|_| fields.lines("synonyms")),
        feedback_enabled: Some(fields.flag("feedback_enabled")),
        retention_days: fields.get("retention_days").map(|v| {
            let v = v.trim();
            (!v.is_empty()).then(|| v.parse().unwrap_or(0))
        }),
        raw_retention_days: fields
            .get("raw_retention_days")
            .map(|v| v.trim().parse().unwrap_or(0)),
    };
    let texts: serde_json::Map<String, Value> = TEXTS
        .iter()
        .chain(EXTRA_TEXTS.iter())
        .map(|n| (n.to_string(), json!(fields.text(n))))
        .collect();
    let form = json!({
        "texts": texts, "second_lang": second.code(), "translations": translation,
        "second_defaults": serde_json::to_value(BotTexts::for_other_language(&current.texts(), current.lang(), second)).expect("texts serialise"),
        "default_language": lang.code(), "timezone": fields.text("timezone"), "always_open": always,
        "days": days, "answer_threshold": fields.text("answer_threshold"),
        "suggest_threshold": fields.text("suggest_threshold"), "synonyms": fields.text("synonyms"),
        "feedback_enabled": fields.flag("feedback_enabled"),
        "rating_enabled": fields.flag("rating_enabled"),
        "retention_days": fields.text("retention_days"), "raw_retention_days": fields.text("raw_retention_days"),
    });
    (patch, form)
}

async fn save(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let current = settings::get(&state.app, &member.ctx()).await?;
    let (patch, form) = patch_of(&fields, &current);
    let errors = match settings::update(&state.app, &member.ctx(), patch).await {
        Ok(_) => {
            let message = t(&state, &member.viewer, "settings.saved", &[]);
            return done(&member.viewer, &member.url("/settings"), message).await;
        }
        Err(e) => e.into_form_errors()?,
    };
    page(
        &state,
        &member,
        form,
        field_errors(&state, &member.viewer, &errors),
    )
    .await
}

/// Owners only; the slug must be typed to confirm.
async fn delete_tenant(
    State(state): State<AppState>,
    member: Member,
    fields: Fields,
) -> PageResult {
    member.require(Permission::OwnTenant)?;
    if fields.text("confirm").trim() != member.tenant.slug {
        let s = switchboard_app::settings::get(&state.app, &member.ctx()).await?;
        let errors = json!({"confirm": t(&state, &member.viewer, "settings.delete.mismatch", &[])});
        return page(&state, &member, form_of(&s), errors).await;
    }
    // The webhook first, while the token can still be read.
    let _ = state
        .telegram
        .remove_bot(member.tenant.id, member.ctx().actor())
        .await;
    accounts::platform_event(
        &state.pool,
        Some(member.user().id),
        "tenant.deleted",
        None,
        json!({"tenant_id": member.tenant.id, "slug": member.tenant.slug, "name": member.tenant.name}),
    )
    .await?;
    accounts::delete_tenant(&state.pool, member.tenant.id)
        .await
        .map_err(PageError::from)?;
    let message = t(
        &state,
        &member.viewer,
        "settings.delete.done",
        &[("org", member.tenant.name.clone())],
    );
    done(&member.viewer, "/", message).await
}

/// A stored `real` as the slider's two decimals.
fn two_decimals(x: f32) -> f64 {
    (f64::from(x) * 100.0).round() / 100.0
}
