//! What the bot could not answer: users' questions of the last 30 days that no rule
//! answered (handed over, or only suggestions offered), or that a rule answered unsure
//! (perhaps wrongly), grouped when they say nearly the same thing, each with a one-click
//! "add as an example to rule X".

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use switchboard_app::rules;
use switchboard_app::AppError;
use switchboard_core::matcher::cluster;
use switchboard_core::text::normalize;
use switchboard_core::RuleId;

use super::{done, render, t, Fields, Member, PageError, PageResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/rules/unanswered", get(page))
        .route("/t/{slug}/rules/unanswered/add", post(add_example))
}

const DAYS: i32 = 30;

async fn page(State(state): State<AppState>, member: Member) -> PageResult {
    let ctx = member.ctx();
    let all_rules = rules::all(&state.app, &ctx).await?;
    // Questions already taught to a rule are done.
    let known: HashSet<String> = all_rules
        .iter()
        .flat_map(|r| r.examples.iter().map(|e| normalize(e)))
        .collect();
    let questions: Vec<_> = rules::unanswered(&state.app, &ctx, DAYS, 2000)
        .await?
        .into_iter()
        .filter(|q| !q.text.trim().is_empty() && !known.contains(&normalize(&q.text)))
        .collect();
    let texts: Vec<&str> = questions.iter().map(|q| q.text.as_str()).collect();
    let titles: HashMap<uuid::Uuid, &str> = all_rules
        .iter()
        .map(|r| (r.id.0, r.title.as_str()))
        .collect();
    let groups: Vec<_> = cluster(&texts)
        .into_iter()
        .take(100)
        .map(|g| {
            let first = &questions[g[0]];
            // The matcher's most frequent best guess in the group, as the default target.
            let mut guesses: HashMap<uuid::Uuid, usize> = HashMap::new();
            for &i in &g {
                if let Some(r) = questions[i].best_rule.filter(|r| titles.contains_key(r)) {
                    *guesses.entry(r).or_default() += 1;
                }
            }
            let guess = guesses.into_iter().max_by_key(|(_, n)| *n).map(|(r, _)| r);
            // Answered, but unsure: which rule, how sure.
            let unsure = first.answered_by.and_then(|r| {
                let title = titles.get(&r)?;
                let percent = (first.best_score.unwrap_or_default() * 100.0).round() as i64;
                Some(json!({"rule": title, "percent": percent}))
            });
            json!({
                "unsure": unsure,
                "text": first.text,
                "count": g.len(),
                "last_at": g.iter().map(|&i| questions[i].created_at).max(),
                "others": g.iter().skip(1).take(5).map(|&i| questions[i].text.clone()).collect::<Vec<_>>(),
                "guess": guess,
                "guess_title": guess.and_then(|r| titles.get(&r).copied()),
            })
        })
        .collect();
    let rule_choices: Vec<_> = all_rules
        .iter()
        .map(|r| json!({"id": r.id, "title": r.title}))
        .collect();
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/rules/unanswered.html",
        json!({"section": "rules", "groups": groups, "rules": rule_choices,
               "total": questions.len(), "days": DAYS}),
    )
    .await
}

async fn add_example(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    let text = fields.text("text");
    let rule: RuleId = fields
        .text("rule_id")
        .parse()
        .map_err(|_| PageError::BadRequest(t(&state, &member.viewer, "learning.pick_rule", &[])))?;
    let row = match rules::add_example(&state.app, &member.ctx(), rule, &text).await {
        Ok(row) => row,
        Err(AppError::Invalid(v)) => {
            // The text, or the rule has as many examples as it may.
            let message = match v.errors.first() {
                Some(e) if e.problem.code == "rule_examples_full" => {
                    super::problem_text(&state, &member.viewer, &e.problem)
                }
                _ => t(&state, &member.viewer, "learning.bad_text", &[]),
            };
            return Err(PageError::BadRequest(message));
        }
        Err(e) => return Err(e.into()),
    };
    let message = t(
        &state,
        &member.viewer,
        "learning.added",
        &[("rule", row.title)],
    );
    done(&member.viewer, &member.url("/rules/unanswered"), message).await
}
