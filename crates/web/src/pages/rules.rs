//! Answer rules in the panel: a searchable, filterable list with bulk actions; the rule
//! editor (answer with a formatting preview, example questions and keywords as lists,
//! buttons); deletion with confirmation; CSV/JSON import and export.

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::handler::Handler;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_app::rules::{self, PortableRule, Rule, RuleDraft};
use switchboard_core::validate::{Invalid, Problem};
use switchboard_core::{Permission, RuleId, Translations};
use switchboard_db::config::rows_of;
use switchboard_db::rules::{RuleFilter, RuleRow};

use super::{
    button_targets, done, editor_rows, editor_rows_of, field_errors, posted_buttons,
    posted_translations, render, render_block, t, translation_langs, with_buttons, Fields, Member,
    PageError, PageResult,
};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/rules", get(list).post(create))
        .route("/t/{slug}/rules/new", get(new_form))
        .route("/t/{slug}/rules/bulk", post(bulk))
        .route("/t/{slug}/rules/preview", post(preview))
        .route("/t/{slug}/rules/export", get(export))
        .route(
            "/t/{slug}/rules/import",
            get(import_form).post(import.layer(DefaultBodyLimit::max(MAX_IMPORT_FILE + 64 * 1024))),
        )
        .route("/t/{slug}/rules/{id}", get(edit_form).post(update))
        .route(
            "/t/{slug}/rules/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    /// all, on, off
    enabled: Option<String>,
    /// all, yes, no
    buttons: Option<String>,
    /// title, hits, updated
    sort: Option<String>,
    page: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let enabled = match q.enabled.as_deref() {
        Some("on") => Some(true),
        Some("off") => Some(false),
        _ => None,
    };
    // Filtering by buttons and sorting by hits need every match; rule sets are small
    // enough (thousands) to do that here, then page.
    let (rows, buttons) = rules::list(
        &state.app,
        &member.ctx(),
        &RuleFilter {
            query: q.q.clone(),
            enabled,
            limit: 100_000,
            offset: 0,
        },
    )
    .await?;
    let hits = rules::hit_counts(&state.app, &member.ctx()).await?;
    let mut items: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let n_buttons = buttons
                .iter()
                .filter(|b| b.owner_rule_id == Some(r.id))
                .count();
            let hit = hits.get(&r.id).copied().unwrap_or(0);
            (r, n_buttons, hit)
        })
        .filter(|(_, n, _)| match q.buttons.as_deref() {
            Some("yes") => *n > 0,
            Some("no") => *n == 0,
            _ => true,
        })
        .collect();
    match q.sort.as_deref() {
        Some("hits") => items.sort_by_key(|item| std::cmp::Reverse(item.2)),
        Some("updated") => items.sort_by_key(|item| std::cmp::Reverse(item.0.updated_at)),
        _ => items.sort_by_key(|item| item.0.title.to_lowercase()),
    }
    let total = items.len() as i64;
    let page = q.page.unwrap_or(1).max(1);
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let shown: Vec<_> = items
        .into_iter()
        .skip(((page - 1) * PAGE_SIZE) as usize)
        .take(PAGE_SIZE as usize)
        .map(|(r, n, hit)| {
            json!({"id": r.id, "title": r.title, "answer": r.answer, "enabled": r.enabled,
                   "examples": r.examples.len(), "keywords": r.keywords.len(), "buttons": n,
                   "hits": hit, "updated_at": r.updated_at})
        })
        .collect();
    let ctx = json!({
        "section": "rules", "rules": shown, "total": total, "page": page, "pages": pages,
        "filter": {"q": q.q, "enabled": q.enabled.unwrap_or_else(|| "all".into()),
                   "buttons": q.buttons.unwrap_or_else(|| "all".into()),
                   "sort": q.sort.unwrap_or_else(|| "title".into())},
    });
    if member.viewer.htmx {
        return render_block(
            &state,
            &member.viewer,
            "admin/rules/list.html",
            "results",
            ctx_with_member(&member, ctx),
        );
    }
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/rules/list.html",
        ctx,
    )
    .await
}

/// htmx partials render outside the layout; give them what the layout would.
fn ctx_with_member(member: &Member, mut ctx: serde_json::Value) -> serde_json::Value {
    ctx["tenant"] = json!({"slug": member.tenant.slug});
    ctx["can"] = json!({"configure": member.role.can(Permission::WriteConfig)});
    ctx
}

/// What the editor form holds.
#[derive(Serialize, Default)]
struct RuleForm {
    title: String,
    question: String,
    answer: String,
    examples: String,
    keywords: String,
    required: String,
    patterns: String,
    featured: bool,
    enabled: bool,
    priority: i32,
    format: String,
    /// `question` and `answer` in other languages.
    translations: Translations,
}

impl RuleForm {
    fn of(r: &RuleRow) -> Self {
        RuleForm {
            title: r.title.clone(),
            question: r.question.clone().unwrap_or_default(),
            answer: r.answer.clone(),
            examples: r.examples.join("\n"),
            keywords: r.keywords.join("\n"),
            required: r.required.join("\n"),
            patterns: r.patterns.join("\n"),
            featured: r.featured,
            enabled: r.enabled,
            priority: r.priority,
            format: r.format.clone(),
            translations: r.translations.clone(),
        }
    }
}

async fn editor(
    state: &AppState,
    member: &Member,
    rule: Option<RuleId>,
    form: &RuleForm,
    buttons: serde_json::Value,
    errors: serde_json::Value,
) -> PageResult {
    let targets = button_targets(state, member).await?;
    let own = json!(form.translations);
    let langs = translation_langs(state, member, with_buttons(&own, &buttons)).await?;
    let preview = switchboard_core::format::preview_html(&form.answer, form.format == "html");
    render(
        state,
        &member.viewer,
        Some(member),
        "admin/rules/form.html",
        json!({"section": "rules", "rule_id": rule, "form": form, "buttons": buttons,
               "targets": targets, "errors": errors, "preview": preview, "langs": langs}),
    )
    .await
}

async fn new_form(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let form = RuleForm {
        enabled: true,
        format: "plain".into(),
        ..Default::default()
    };
    editor(&state, &member, None, &form, json!([]), json!({})).await
}

async fn edit_form(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    let Rule { rule, buttons } = rules::get(&state.app, &member.ctx(), RuleId(id)).await?;
    let rows = rows_of(&buttons.iter().collect::<Vec<_>>());
    editor(
        &state,
        &member,
        Some(rule.id),
        &RuleForm::of(&rule),
        editor_rows_of(&rows),
        json!({}),
    )
    .await
}

fn draft_of(fields: &Fields) -> RuleDraft {
    RuleDraft {
        title: fields.text("title"),
        question: fields.get("question").map(String::from),
        answer: fields.text("answer"),
        examples: fields.lines("examples"),
        keywords: fields.lines("keywords"),
        required: fields.lines("required"),
        patterns: fields.lines("patterns"),
        priority: fields.text("priority").trim().parse().unwrap_or(0),
        enabled: fields.flag("enabled"),
        featured: fields.flag("featured"),
        format: if fields.get("format") == Some("html") {
            "html".into()
        } else {
            "plain".into()
        },
        buttons: Some(posted_buttons(fields)),
        translations: posted_translations(fields, RULE_WORDS),
    }
}

/// What of a rule can be written per language.
const RULE_WORDS: &[&str] = &["question", "answer"];

/// Saves a rule from the editor; on errors, the editor again with them.
async fn save(state: &AppState, member: &Member, id: Option<RuleId>, fields: Fields) -> PageResult {
    let draft = draft_of(&fields);
    let errors = if fields
        .get("priority")
        .is_some_and(|p| !p.trim().is_empty() && p.trim().parse::<i32>().is_err())
    {
        // Keep the typed value visible and say why.
        member.require(Permission::WriteConfig)?;
        Invalid::single("priority", t(state, &member.viewer, "form.number", &[]))
    } else {
        let saved = match id {
            Some(id) => rules::replace(&state.app, &member.ctx(), id, draft.clone()).await,
            None => rules::create(&state.app, &member.ctx(), draft.clone()).await,
        };
        match saved {
            Ok(rule) => {
                let message = t(
                    state,
                    &member.viewer,
                    "rules.saved",
                    &[("title", rule.rule.title)],
                );
                return done(&member.viewer, &member.url("/rules"), message).await;
            }
            Err(e) => e.into_form_errors()?,
        }
    };
    editor(
        state,
        member,
        id,
        &form_of(&fields, &draft),
        editor_rows(draft.buttons.as_deref().unwrap_or_default()),
        field_errors(state, &member.viewer, &errors),
    )
    .await
}

fn form_of(fields: &Fields, input: &RuleDraft) -> RuleForm {
    RuleForm {
        title: fields.text("title"),
        question: fields.text("question"),
        answer: fields.text("answer"),
        examples: fields.text("examples"),
        keywords: fields.text("keywords"),
        required: fields.text("required"),
        patterns: fields.text("patterns"),
        featured: input.featured,
        enabled: input.enabled,
        priority: input.priority,
        format: input.format.clone(),
        translations: input.translations.clone(),
    }
}

async fn create(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    save(&state, &member, None, fields).await
}

async fn update(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
    fields: Fields,
) -> PageResult {
    save(&state, &member, Some(RuleId(id)), fields).await
}

async fn confirm_delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let rule = rules::get(&state.app, &member.ctx(), RuleId(id))
        .await?
        .rule;
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/confirm.html",
        json!({"section": "rules", "action": member.url(&format!("/rules/{id}/delete")),
               "cancel": member.url(&format!("/rules/{id}")),
               "question": t(&state, &member.viewer, "rules.delete.question", &[("title", rule.title)]),
               "warning": t(&state, &member.viewer, "rules.delete.warning", &[])}),
    )
    .await
}

async fn delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    let rule = rules::delete(&state.app, &member.ctx(), RuleId(id)).await?;
    let message = t(
        &state,
        &member.viewer,
        "rules.deleted",
        &[("title", rule.title)],
    );
    done(&member.viewer, &member.url("/rules"), message).await
}

async fn bulk(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let ids: Vec<RuleId> = fields
        .all("ids")
        .iter()
        .filter_map(|s| uuid::Uuid::parse_str(s).ok().map(RuleId))
        .collect();
    let enabled = match fields.get("action") {
        Some("enable") => true,
        Some("disable") => false,
        _ => return Err(PageError::BadRequest("unknown action".into())),
    };
    let changed = rules::set_enabled(&state.app, &member.ctx(), &ids, enabled).await?;
    let key = if enabled {
        "rules.bulk.enabled"
    } else {
        "rules.bulk.disabled"
    };
    let message = t(&state, &member.viewer, key, &[("n", changed.to_string())]);
    done(&member.viewer, &member.url("/rules"), message).await
}

/// The formatting preview (htmx, as the admin types).
async fn preview(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    member.require(Permission::ReadConfig)?;
    let html = fields.get("format") == Some("html");
    let answer = fields.text("answer");
    let problem = if html {
        switchboard_core::format::check_telegram_html(&answer)
            .err()
            .map(|e| super::problem_text(&state, &member.viewer, &e.problem()))
    } else {
        None
    };
    render_block(
        &state,
        &member.viewer,
        "admin/rules/form.html",
        "preview",
        json!({"preview": switchboard_core::format::preview_html(&answer, html), "preview_problem": problem,
               // Telegram takes 4,096 characters a message: a longer answer goes out in parts.
               "preview_parts": switchboard_core::text::split_message(&answer, switchboard_core::text::TELEGRAM_TEXT_LIMIT).len()}),
    )
}

// Import and export -------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

async fn export(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<ExportQuery>,
) -> PageResult<Response> {
    let rows = rules::all(&state.app, &member.ctx()).await?;
    let portable: Vec<PortableRule> = rows.into_iter().map(PortableRule::from).collect();
    let slug = &member.tenant.slug;
    let (body, content_type, ext) = match q.format.as_deref() {
        Some("json") => (
            serde_json::to_vec_pretty(&portable).map_err(|_| PageError::Internal)?,
            "application/json",
            "json",
        ),
        _ => {
            let mut w = csv::Writer::from_writer(crate::reports::CSV_BOM.as_bytes().to_vec());
            w.write_record([
                "id", "title", "answer", "examples", "keywords", "enabled", "priority", "format",
            ])
            .map_err(|_| PageError::Internal)?;
            for r in &portable {
                w.write_record([
                    r.id.map(|i| i.to_string()).unwrap_or_default(),
                    r.title.clone(),
                    r.answer.clone(),
                    r.examples.join("\n"),
                    r.keywords.join("\n"),
                    r.enabled.to_string(),
                    r.priority.to_string(),
                    r.format.clone(),
                ])
                .map_err(|_| PageError::Internal)?;
            }
            (
                w.into_inner().map_err(|_| PageError::Internal)?,
                "text/csv; charset=utf-8",
                "csv",
            )
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{slug}-rules.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

async fn import_form(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/rules/import.html",
        json!({"section": "rules"}),
    )
    .await
}

/// Parses an uploaded file (CSV or JSON, told apart by content). A file that cannot be
/// read says why, with its line where it has one.
pub fn parse_import(bytes: &[u8]) -> Result<Vec<PortableRule>, Problem> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Problem::coded("import_not_utf8", "the file is not UTF-8 text"))?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).map_err(|e| {
            Problem::coded(
                "import_json",
                format!(
                    "the JSON could not be read at line {}, column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
            .with("line", e.line())
            .with("column", e.column())
        });
    }
    let csv_line = |e: csv::Error, line: usize| {
        let line = e.position().map(|p| p.line() as usize).unwrap_or(line);
        Problem::coded(
            "import_csv_line",
            format!("CSV line {line} could not be read: {e}"),
        )
        .with("line", line)
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(trimmed.as_bytes());
    let headers = reader.headers().map_err(|e| csv_line(e, 1))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(title), Some(answer)) = (col("title"), col("answer")) else {
        return Err(Problem::coded(
            "import_csv_header",
            "the first line of a CSV file must name its columns, at least title and answer",
        ));
    };
    let (id, examples, keywords, enabled, priority, format) = (
        col("id"),
        col("examples"),
        col("keywords"),
        col("enabled"),
        col("priority"),
        col("format"),
    );
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_line(e, i + 2))?;
        let get = |c: Option<usize>| {
            c.and_then(|c| record.get(c))
                .unwrap_or_default()
                .to_string()
        };
        let list = |c: Option<usize>| -> Vec<String> {
            get(c)
                .split(['\n', '|'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        out.push(PortableRule {
            id: uuid::Uuid::parse_str(get(id).trim()).ok(),
            title: get(Some(title)),
            answer: get(Some(answer)),
            examples: list(examples),
            keywords: list(keywords),
            enabled: !matches!(
                get(enabled).trim().to_lowercase().as_str(),
                "false" | "0" | "no" | "off"
            ),
            priority: get(priority).trim().parse().unwrap_or(0),
            // CSV carries no translations: a rule's stay as they are.
            translations: None,
            format: match get(format).trim() {
                "" => "plain".into(),
                f => f.to_string(),
            },
        });
    }
    Ok(out)
}

/// A refused rule of an import in the reader's words, with the column at fault:
/// "Item 3, answer: Required." (fields are `rules[i].column`).
fn import_problem(
    state: &AppState,
    viewer: &super::Viewer,
    field: &str,
    problem: &Problem,
) -> String {
    let (Some(item), Some((_, column))) = (problem.param("item"), field.split_once("].")) else {
        return super::problem_text(state, viewer, problem);
    };
    let mut bare = problem.clone();
    bare.params.retain(|(k, _)| *k != "item");
    let error = super::problem_text(state, viewer, &bare);
    t(
        state,
        viewer,
        "rules.import.problem",
        &[
            ("item", item.to_string()),
            ("column", column.to_string()),
            ("error", error),
        ],
    )
}

/// The largest file of rules the panel takes (an export of 5,000 rules with their
/// examples fits).
const MAX_IMPORT_FILE: usize = 20 * 1024 * 1024;

async fn import(
    State(state): State<AppState>,
    member: Member,
    mut multipart: Multipart,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let mut bytes = Vec::new();
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("file") {
            bytes = field
                .bytes()
                .await
                .map_err(|_| {
                    let mb = (MAX_IMPORT_FILE / 1024 / 1024).to_string();
                    PageError::BadRequest(t(
                        &state,
                        &member.viewer,
                        "rules.import.upload_failed",
                        &[("mb", mb)],
                    ))
                })?
                .to_vec();
        }
    }
    // Parsing up to the upload limit is CPU work: off the async threads.
    let parsed = tokio::task::spawn_blocking(move || parse_import(&bytes))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "import parsing failed");
            PageError::Internal
        })?;
    let outcome = match parsed {
        Err(e) => Err(vec![super::problem_text(&state, &member.viewer, &e)]),
        Ok(rules) if rules.is_empty() => {
            Err(vec![t(&state, &member.viewer, "rules.import.empty", &[])])
        }
        Ok(incoming) => match rules::import(&state.app, &member.ctx(), incoming).await {
            Ok(counts) => Ok(counts),
            Err(e) => {
                let invalid = e.into_form_errors()?;
                Err(invalid
                    .errors
                    .iter()
                    .map(|e| import_problem(&state, &member.viewer, &e.field, &e.problem))
                    .collect())
            }
        },
    };
    match outcome {
        Ok((created, updated)) => {
            let message = t(
                &state,
                &member.viewer,
                "rules.import.done",
                &[
                    ("created", created.to_string()),
                    ("updated", updated.to_string()),
                ],
            );
            done(&member.viewer, &member.url("/rules"), message).await
        }
        Err(problems) => {
            render(
                &state,
                &member.viewer,
                Some(&member),
                "admin/rules/import.html",
                json!({"section": "rules", "problems": problems}),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_imports_parse() {
        let csv = "title,answer,examples,keywords,enabled\nHours,9-18,\"when open\nopening hours\",hours,true\nPrices,Cheap,,,no\n";
        let rules = parse_import(csv.as_bytes()).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].examples, ["when open", "opening hours"]);
        assert!(!rules[1].enabled);
        let json = r#"[{"title": "Hours", "answer": "9-18", "examples": ["a"]}]"#;
        let rules = parse_import(json.as_bytes()).unwrap();
        assert_eq!(rules[0].format, "plain");
        assert!(rules[0].enabled);
        assert_eq!(
            parse_import(b"name,text\nx,y\n").unwrap_err().code,
            "import_csv_header"
        );
        assert_eq!(
            parse_import(&[0xff, 0xfe]).unwrap_err().code,
            "import_not_utf8"
        );
        // Our own CSV export starts with the UTF-8 mark for Excel: it imports as it is.
        let exported = format!("{}title,answer\nHours,9-18\n", crate::reports::CSV_BOM);
        assert_eq!(parse_import(exported.as_bytes()).unwrap()[0].title, "Hours");
    }
}
