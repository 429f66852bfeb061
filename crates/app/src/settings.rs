//! The bot's texts and behaviour settings.

use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::{Event, Permission};
use switchboard_db::config::{self, Settings, SettingsPatch};

use crate::{commit, record, App, AppResult, Ctx};

pub async fn get(app: &App, ctx: &Ctx) -> AppResult<Settings> {
    ctx.require(Permission::ReadConfig)?;
    Ok(config::get_settings(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}

/// The bot's texts that have a column of their own (the default language's).
pub const TEXTS: [&str; 8] = [
    "welcome_text",
    "help_text",
    "handover_text",
    "offhours_text",
    "closing_text",
    "rating_text",
    "already_waiting_text",
    "stale_button_text",
];

/// Texts without a column of their own: for the default language they are kept, like
/// the other language's texts, in `translations`.
pub const EXTRA_TEXTS: [&str; 7] = [
    "suggest_text",
    "suggest_none",
    "feedback_yes",
    "feedback_no",
    "feedback_sorry",
    "feedback_person",
    "feedback_thanks",
];

/// Checks the texts, hours and zone of a settings change.
pub fn validate_patch(p: &SettingsPatch, errors: &mut Invalid) {
    let texts = [
        ("welcome_text", &p.welcome_text, 4096),
        ("help_text", &p.help_text, 4096),
        ("handover_text", &p.handover_text, 4096),
        ("closing_text", &p.closing_text, 4096),
        ("offhours_text", &p.offhours_text, 4096),
        ("rating_text", &p.rating_text, 4096),
        ("already_waiting_text", &p.already_waiting_text, 200),
        ("stale_button_text", &p.stale_button_text, 200),
    ];
    for (field, value, limit) in texts {
        if let Some(v) = value {
            errors.check(
                field,
                validate::text(v, limit).and_then(|_| validate::message_text(v)),
            );
        }
    }
    for (field, value) in [
        ("answer_threshold", p.answer_threshold),
        ("suggest_threshold", p.suggest_threshold),
    ] {
        if let Some(t) = value {
            if !(0.0..=1.0).contains(&t) || t.is_nan() {
                errors.add(
                    field,
                    Problem::coded("between", "must be between 0 and 1")
                        .with("min", 0)
                        .with("max", 1),
                );
            }
        }
    }
    if let Some(groups) = &p.synonyms {
        errors.check("synonyms", validate::text_list(groups, 200, 500));
        if groups
            .iter()
            .any(|g| g.split(',').filter(|w| !w.trim().is_empty()).count() < 2)
        {
            errors.add(
                "synonyms",
                Problem::coded(
                    "synonym_group",
                    "each group needs at least two words, separated by commas",
                ),
            );
        }
    }
    if let Some(Some(d)) = p.retention_days {
        if !(1..=3650).contains(&d) {
            errors.add(
                "retention_days",
                Problem::coded(
                    "retention_days",
                    "must be from 1 to 3650 days, or empty to keep",
                ),
            );
        }
    }
    if let Some(d) = p.raw_retention_days {
        if !(1..=3650).contains(&d) {
            errors.add(
                "raw_retention_days",
                Problem::coded("days_range", "must be from 1 to 3650 days")
                    .with("min", 1)
                    .with("max", 3650),
            );
        }
    }
    if let Some(l) = &p.default_language {
        if l != "en" && l != "ru" {
            errors.add(
                "default_language",
                Problem::coded("language", "must be en or ru"),
            );
        }
    }
    if let Some(z) = &p.timezone {
        if let Err(e) = switchboard_core::hours::parse_zone(z) {
            errors.add(
                "timezone",
                Problem::coded("timezone", e.to_string()).with("zone", z),
            );
        }
    }
    if let Some(Some(h)) = &p.working_hours {
        match serde_json::from_value::<switchboard_core::hours::WorkingHours>(h.clone()) {
            Ok(hours) => {
                if let Err(e) = hours.validate() {
                    errors.add("working_hours", e.problem());
                }
            }
            Err(_) => errors.add(
                "working_hours",
                Problem::coded(
                    "working_hours_shape",
                    "must be {\"days\": [7 lists of [\"HH:MM\", \"HH:MM\"] pairs]}",
                ),
            ),
        }
    }
    if let Some(t) = &p.translations {
        let ok = t.as_object().is_some_and(|langs| {
            langs.iter().all(|(lang, texts)| {
                (lang == "en" || lang == "ru")
                    && texts.as_object().is_some_and(|m| {
                        m.values()
                            .all(|v| v.as_str().is_some_and(|s| s.chars().count() <= 4096))
                    })
            })
        });
        if !ok {
            errors.add(
                "translations",
                Problem::coded(
                    "translations_shape",
                    "must be {\"en\"|\"ru\": {text name: text}}",
                ),
            );
        } else {
            // A misspelt name would be stored, and (a change replaces all translations)
            // the real text it meant lost.
            for (lang, texts) in t.as_object().into_iter().flatten() {
                for name in texts.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !TEXTS.contains(&name.as_str()) && !EXTRA_TEXTS.contains(&name.as_str()) {
                        errors.add(
                            &format!("translations.{lang}.{name}"),
                            Problem::new("unknown_field").with("field", name),
                        );
                    }
                }
            }
        }
    }
}

/// `{"ru": {}, "en": {…}}` → `{"en": {…}}`: a language without texts is no translation.
fn without_empty_languages(t: serde_json::Value) -> serde_json::Value {
    match t {
        serde_json::Value::Object(langs) => serde_json::Value::Object(
            langs
                .into_iter()
                .filter(|(_, texts)| texts.as_object().is_none_or(|m| !m.is_empty()))
                .collect(),
        ),
        other => other,
    }
}

/// The names of the fields a change really changes (for the events log): a field given
/// with the value it already has is not a change.
pub fn changed_fields(p: &SettingsPatch, c: &Settings) -> Vec<String> {
    fn differs<T: PartialEq>(new: &Option<T>, old: &T) -> bool {
        new.as_ref().is_some_and(|n| n != old)
    }
    let fields: [(&str, bool); 19] = [
        ("welcome_text", differs(&p.welcome_text, &c.welcome_text)),
        ("help_text", differs(&p.help_text, &c.help_text)),
        ("handover_text", differs(&p.handover_text, &c.handover_text)),
        ("closing_text", differs(&p.closing_text, &c.closing_text)),
        (
            "already_waiting_text",
            differs(&p.already_waiting_text, &c.already_waiting_text),
        ),
        (
            "stale_button_text",
            differs(&p.stale_button_text, &c.stale_button_text),
        ),
        (
            "answer_threshold",
            differs(&p.answer_threshold, &c.answer_threshold),
        ),
        (
            "default_language",
            differs(&p.default_language, &c.default_language),
        ),
        (
            "offhours_text",
            p.offhours_text
                .as_ref()
                .is_some_and(|n| Some(n) != c.offhours_text.as_ref()),
        ),
        ("timezone", differs(&p.timezone, &c.timezone)),
        ("working_hours", differs(&p.working_hours, &c.working_hours)),
        (
            "translations",
            p.translations
                .as_ref()
                .is_some_and(|n| *n != without_empty_languages(c.translations.clone())),
        ),
        (
            "rating_enabled",
            differs(&p.rating_enabled, &c.rating_enabled),
        ),
        (
            "rating_text",
            p.rating_text
                .as_ref()
                .is_some_and(|n| Some(n) != c.rating_text.as_ref()),
        ),
        (
            "suggest_threshold",
            differs(&p.suggest_threshold, &c.suggest_threshold),
        ),
        ("synonyms", differs(&p.synonyms, &c.synonyms)),
        (
            "feedback_enabled",
            differs(&p.feedback_enabled, &c.feedback_enabled),
        ),
        (
            "retention_days",
            differs(&p.retention_days, &c.retention_days),
        ),
        (
            "raw_retention_days",
            differs(&p.raw_retention_days, &c.raw_retention_days),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Changes the settings given; a change of language republishes the command menu
/// (its descriptions are in that language). Logs the fields that really changed.
pub async fn update(app: &App, ctx: &Ctx, mut patch: SettingsPatch) -> AppResult<Settings> {
    ctx.require(Permission::WriteConfig)?;
    if let Some(groups) = &patch.synonyms {
        patch.synonyms = Some(crate::rules::clean_list(groups));
    }
    if let Some(t) = patch.translations.take() {
        patch.translations = Some(without_empty_languages(t));
    }
    let mut errors = Invalid::new();
    validate_patch(&patch, &mut errors);
    errors.into_result()?;
    let mut tx = app.begin(ctx.tenant).await?;
    let current = config::lock_settings(&mut *tx, ctx.tenant).await?;
    let changed = changed_fields(&patch, &current);
    if changed.is_empty() {
        // Nothing to log; the caches are still refreshed (a save is asked to take effect).
        drop(tx);
        app.config_changed(ctx.tenant, false);
        return Ok(current);
    }
    let saved = config::update_settings(&mut *tx, ctx.tenant, &patch).await?;
    let language_changed = changed.iter().any(|f| f == "default_language");
    let event = Event::SettingsUpdated { fields: changed };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    app.config_changed(ctx.tenant, language_changed);
    Ok(saved)
}
