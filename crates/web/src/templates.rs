//! Server-rendered pages: a minijinja environment with the templates embedded in the
//! binary, the `t()` translation function, `static_url()`, and date formatting.

use std::sync::Arc;

use minijinja::value::{Kwargs, Value};
use minijinja::{AutoEscape, Environment, State};

use crate::i18n::{Catalogs, UiLang};
use crate::static_files;

pub struct Templates {
    env: Environment<'static>,
}

fn lang_of(state: &State) -> UiLang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(UiLang::parse))
        .unwrap_or(UiLang::En)
}

impl Templates {
    pub fn new(catalogs: Arc<Catalogs>) -> Self {
        let mut env = Environment::new();
        minijinja_embed::load_templates!(&mut env);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let c = catalogs.clone();
        env.add_function(
            "t",
            move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
                let mut args: Vec<(&str, String)> = Vec::new();
                for name in kwargs.args() {
                    let v: Value = kwargs.get(name)?;
                    args.push((name, v.to_string()));
                }
                Ok(c.t(lang_of(state), key, &args))
            },
        );
        env.add_function("static_url", |path: &str| static_files::url(path));
        env.add_filter(
            "truncate",
            |value: String, length: Option<usize>| -> String {
                let length = length.unwrap_or(80);
                if value.chars().count() <= length {
                    value
                } else {
                    let cut: String = value.chars().take(length.saturating_sub(1)).collect();
                    format!("{}…", cut.trim_end())
                }
            },
        );
        // `value|datetime` → "2026-11-24 14:05" (UTC, or the page's time zone offset).
        env.add_filter("datetime", |value: Value| -> String {
            let s = value.to_string();
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|d| {
                    d.with_timezone(&chrono::Utc)
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or(s)
        });
        // `value|localtime("Europe/Moscow")` → "2026-11-24 17:05" in that time zone.
        env.add_filter("localtime", |value: Value, tz: &str| -> String {
            let s = value.to_string();
            let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Tz::UTC);
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or(s)
        });
        env.add_filter("ago", |state: &State, value: Value| -> String {
            let s = value.to_string();
            let Ok(at) = chrono::DateTime::parse_from_rfc3339(&s) else {
                return s;
            };
            let secs = (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0);
            let lang = lang_of(state);
            let (n, unit) = if secs < 60 {
                (secs, "s")
            } else if secs < 3600 {
                (secs / 60, "min")
            } else if secs < 86_400 {
                (secs / 3600, "h")
            } else {
                (secs / 86_400, "d")
            };
            match (lang, unit) {
                (UiLang::Ru, "s") => format!("{n} с"),
                (UiLang::Ru, "min") => format!("{n} мин"),
                (UiLang::Ru, "h") => format!("{n} ч"),
                (UiLang::Ru, _) => format!("{n} дн"),
                (_, "s") => format!("{n}s"),
                (_, "min") => format!("{n} min"),
                (_, "h") => format!("{n} h"),
                _ => format!("{n} d"),
            }
        });
        // `seconds|duration` → "45 s", "3.5 min", "2.1 h" (Russian: "3,5 мин").
        env.add_filter("duration", |state: &State, value: Value| -> String {
            match f64::try_from(value) {
                Ok(v) => duration(lang_of(state), v),
                Err(_) => "—".into(),
            }
        });
        // `x|decimal(1)` → "12.5" (Russian: "12,5").
        env.add_filter(
            "decimal",
            |state: &State, value: Value, places: Option<usize>| -> String {
                match f64::try_from(value) {
                    Ok(v) => decimal(lang_of(state), v, places.unwrap_or(1)),
                    Err(_) => "—".into(),
                }
            },
        );
        Self { env }
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// Renders one block of a template (htmx partial updates).
    pub fn render_block(
        &self,
        name: &str,
        block: &str,
        ctx: Value,
    ) -> Result<String, minijinja::Error> {
        let tmpl = self.env.get_template(name)?;
        let mut captured = tmpl.render_captured(ctx)?;
        captured.with_state_mut(|state| state.render_block(block))
    }
}

/// A number with `places` decimals, with the reader's decimal separator.
fn decimal(lang: UiLang, value: f64, places: usize) -> String {
    let text = format!("{value:.places$}");
    match lang {
        UiLang::Ru => text.replace('.', ","),
        _ => text,
    }
}

/// A span of seconds as people read it, in the reader's language.
fn duration(lang: UiLang, secs: f64) -> String {
    let (n, unit) = if secs < 60.0 {
        (format!("{}", secs.round() as i64), "s")
    } else if secs < 3600.0 {
        (decimal(lang, secs / 60.0, 1), "min")
    } else {
        (decimal(lang, secs / 3600.0, 1), "h")
    };
    let unit = match (lang, unit) {
        (UiLang::Ru, "s") => "с",
        (UiLang::Ru, "min") => "мин",
        (UiLang::Ru, _) => "ч",
        (_, u) => u,
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_and_decimals_read_as_each_language_writes_them() {
        assert_eq!(duration(UiLang::En, 210.0), "3.5 min");
        assert_eq!(duration(UiLang::Ru, 210.0), "3,5 мин");
        assert_eq!(duration(UiLang::Ru, 42.4), "42 с");
        assert_eq!(duration(UiLang::En, 7560.0), "2.1 h");
        assert_eq!(decimal(UiLang::Ru, 12.5, 1), "12,5");
    }
}
