//! What the statistics page, its CSV downloads and `GET /api/v1/stats` show: one report
//! for a period of local days in the tenant's time zone, compared with the period of the
//! same length just before it. The log's query parameters ([`log_query`]) and its
//! streamed export ([`export`]) live beside it.

mod export;
mod log_query;

pub use export::{export_body, ExportFormat};
pub use log_query::LogQuery;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchboard_core::validate::{FieldError, Problem};
use switchboard_core::TenantId;
use switchboard_db::log::{Cursor, LogFilter, YEARS};
use switchboard_db::stats::{self, Granularity, Period};
use switchboard_db::PgPool;

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD&granularity=hour|day|week|month` (both days included).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// First day (the tenant's local date); default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day, included; default: today.
    pub to: Option<String>,
    /// Default: hour up to 2 days, day up to 92 days, week up to a year, else month.
    pub granularity: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Range {
    pub from_day: NaiveDate,
    pub to_day: NaiveDate,
    pub period: Period,
    pub previous: Period,
    pub previous_from_day: NaiveDate,
    pub granularity: Granularity,
    pub timezone: String,
}

fn local_midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&naive)
        .earliest()
        // A day starting inside a DST gap (clocks jump from 00:00, as in Santiago or
        // Cairo): it starts an hour later, when the clock shows 01:00.
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
}

/// When today began in `timezone` (an IANA name; UTC if unknown).
pub fn today_start(timezone: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let tz: Tz = timezone.parse().unwrap_or(Tz::UTC);
    local_midnight(tz, now.with_timezone(&tz).date_naive())
}

/// A refused parameter: its name and why (a code the panel translates).
fn refused(field: &str, code: &'static str, english: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        problem: Problem::coded(code, english),
    }
}

fn parse_day(field: &str, s: &str) -> Result<NaiveDate, FieldError> {
    let day = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| FieldError {
        field: field.to_string(),
        problem: Problem::coded(
            "date_format",
            format!("expected a date as YYYY-MM-DD, got “{s}”"),
        )
        .with("value", s),
    })?;
    if !YEARS.contains(&day.year()) {
        return Err(FieldError {
            field: field.to_string(),
            problem: Problem::coded(
                "year_range",
                format!(
                    "a year between {} and {}, got “{s}”",
                    YEARS.start(),
                    YEARS.end()
                ),
            )
            .with("min", YEARS.start())
            .with("max", YEARS.end()),
        });
    }
    Ok(day)
}

/// Resolves the query into instants; a bad value is refused with its field.
pub fn resolve(q: &StatsQuery, timezone: &str, now: DateTime<Utc>) -> Result<Range, FieldError> {
    let tz: Tz = timezone.parse().unwrap_or(Tz::UTC);
    let today = now.with_timezone(&tz).date_naive();
    let to_day = match q.to.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_day("to", s)?,
        None => today,
    };
    let from_day = match q.from.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_day("from", s)?,
        None => to_day - Duration::days(29),
    };
    if from_day > to_day {
        return Err(refused("from", "period_order", "must not be after to"));
    }
    let days = (to_day - from_day).num_days() + 1;
    if days > 3 * 366 {
        return Err(refused(
            "from",
            "period_too_long",
            "a period is at most three years",
        ));
    }
    let granularity = match q.granularity.as_deref().filter(|s| !s.is_empty()) {
        Some(g) => Granularity::parse(g).ok_or_else(|| {
            refused(
                "granularity",
                "granularity",
                "one of hour, day, week, month",
            )
        })?,
        None if days <= 2 => Granularity::Hour,
        None if days <= 92 => Granularity::Day,
        None if days <= 366 => Granularity::Week,
        None => Granularity::Month,
    };
    if granularity == Granularity::Hour && days > 31 {
        return Err(refused(
            "granularity",
            "granularity_hours",
            "hours only for periods of up to 31 days",
        ));
    }
    let period = Period {
        from: local_midnight(tz, from_day),
        to: local_midnight(tz, to_day + Duration::days(1)),
    };
    let previous_from_day = from_day - Duration::days(days);
    let previous = Period {
        from: local_midnight(tz, previous_from_day),
        to: period.from,
    };
    Ok(Range {
        from_day,
        to_day,
        period,
        previous,
        previous_from_day,
        granularity,
        timezone: tz.name().to_string(),
    })
}

/// The metrics drawn as lines over time.
pub const SERIES: &[&str] = &[
    "messages_in",
    "messages_out",
    "questions",
    "handovers",
    "conversations",
    "new_users",
];

fn total(t: &std::collections::BTreeMap<(String, String), i64>, metric: &str) -> i64 {
    t.iter()
        .filter(|((m, _), _)| m == metric)
        .map(|(_, v)| v)
        .sum()
}

fn dim(t: &std::collections::BTreeMap<(String, String), i64>, metric: &str, d: &str) -> i64 {
    t.get(&(metric.to_string(), d.to_string()))
        .copied()
        .unwrap_or(0)
}

fn by_dim(
    t: &std::collections::BTreeMap<(String, String), i64>,
    metric: &str,
) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = t
        .iter()
        .filter(|((m, _), _)| m == metric)
        .map(|((_, d), n)| (d.clone(), *n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[derive(Clone, Debug, Serialize)]
pub struct Headline {
    pub key: &'static str,
    pub value: Option<f64>,
    pub previous: Option<f64>,
    /// `count`, `share` (0–1), `seconds` or `stars`.
    pub unit: &'static str,
}

/// The whole report as JSON (the page renders it, the API returns it).
pub async fn report(
    pool: &PgPool,
    tenant: TenantId,
    range: &Range,
) -> switchboard_db::Result<Value> {
    let (now, before) = (range.period, range.previous);
    // Independent reads, run at once on separate connections, each scoped to the tenant
    // (row-level security).
    let (cur, prev, team, team_prev, active, active_prev, series, cells, operators, rules) = tokio::try_join!(
        stats::totals(pool, tenant, now),
        stats::totals(pool, tenant, before),
        stats::team(pool, tenant, now),
        stats::team(pool, tenant, before),
        stats::active_users(
            pool,
            tenant,
            now,
            range.from_day,
            range.to_day + Duration::days(1)
        ),
        stats::active_users(
            pool,
            tenant,
            before,
            range.previous_from_day,
            range.from_day
        ),
        stats::series(
            pool,
            tenant,
            now,
            range.granularity,
            &range.timezone,
            SERIES
        ),
        stats::heatmap(pool, tenant, now, &range.timezone),
        stats::operators(pool, tenant, now),
        async {
            let mut tx = switchboard_db::begin_scoped(pool, tenant).await?;
            stats::rule_titles(&mut *tx, tenant).await
        },
    )?;

    let mut heatmap = vec![vec![0i64; 24]; 7];
    for (dow, hour, n) in cells {
        if (1..=7).contains(&dow) && (0..24).contains(&hour) {
            heatmap[(dow - 1) as usize][hour as usize] = n;
        }
    }
    let heat_max = heatmap.iter().flatten().copied().max().unwrap_or(0);

    let hits = by_dim(&cur, "rule_hits");
    let titles: std::collections::HashMap<String, (&str, bool)> = rules
        .iter()
        .map(|(id, title, enabled)| (id.to_string(), (title.as_str(), *enabled)))
        .collect();
    let top_rules: Vec<Value> = hits
        .iter()
        .take(20)
        .map(|(id, n)| json!({"id": id, "title": titles.get(id).map(|t| t.0), "hits": n}))
        .collect();
    let hit_ids: std::collections::HashSet<&str> = hits.iter().map(|(id, _)| id.as_str()).collect();
    let never_hit: Vec<Value> = rules
        .iter()
        .filter(|(id, _, enabled)| *enabled && !hit_ids.contains(id.to_string().as_str()))
        .take(50)
        .map(|(id, title, _)| json!({"id": id, "title": title}))
        .collect();

    let questions = total(&cur, "questions");
    let answered = dim(&cur, "questions", "answered");
    let headline = |key: &'static str,
                    unit: &'static str,
                    value: Option<f64>,
                    previous: Option<f64>| Headline {
        key,
        value,
        previous,
        unit,
    };
    let count =
        |t: &std::collections::BTreeMap<(String, String), i64>, m: &str| Some(total(t, m) as f64);
    let headlines = vec![
        headline(
            "messages_in",
            "count",
            count(&cur, "messages_in"),
            count(&prev, "messages_in"),
        ),
        headline(
            "messages_out",
            "count",
            count(&cur, "messages_out"),
            count(&prev, "messages_out"),
        ),
        headline(
            "active_users",
            "count",
            Some(active as f64),
            Some(active_prev as f64),
        ),
        headline(
            "new_users",
            "count",
            count(&cur, "new_users"),
            count(&prev, "new_users"),
        ),
        headline(
            "conversations",
            "count",
            Some(team.conversations as f64),
            Some(team_prev.conversations as f64),
        ),
        headline(
            "auto_answered",
            "share",
            share(team.bot_only, team.conversations),
            share(team_prev.bot_only, team_prev.conversations),
        ),
        headline(
            "answered_questions",
            "share",
            share(answered, questions),
            share(
                dim(&prev, "questions", "answered"),
                total(&prev, "questions"),
            ),
        ),
        headline(
            "handover_share",
            "share",
            share(team.handed_over, team.conversations),
            share(team_prev.handed_over, team_prev.conversations),
        ),
        headline(
            "suggestion_acceptance",
            "share",
            share(
                dim(&cur, "suggestions", "accepted"),
                total(&cur, "suggestions"),
            ),
            share(
                dim(&prev, "suggestions", "accepted"),
                total(&prev, "suggestions"),
            ),
        ),
        headline(
            "helped",
            "share",
            share(dim(&cur, "feedback", "helped"), total(&cur, "feedback")),
            share(dim(&prev, "feedback", "helped"), total(&prev, "feedback")),
        ),
        headline(
            "first_response_p50",
            "seconds",
            team.first_response_p50,
            team_prev.first_response_p50,
        ),
        headline(
            "first_response_p90",
            "seconds",
            team.first_response_p90,
            team_prev.first_response_p90,
        ),
        headline(
            "resolution_p50",
            "seconds",
            team.resolution_p50,
            team_prev.resolution_p50,
        ),
        headline("avg_rating", "stars", team.avg_rating, team_prev.avg_rating),
    ];

    Ok(json!({
        "from": range.from_day.to_string(),
        "to": range.to_day.to_string(),
        "previous_from": range.previous_from_day.to_string(),
        "timezone": range.timezone,
        "granularity": range.granularity.as_str(),
        "headlines": headlines,
        "totals": cur.iter().map(|((m, d), v)| json!({"metric": m, "dim": d, "value": v})).collect::<Vec<_>>(),
        "series": series,
        "handover_reasons": by_dim(&cur, "handovers"),
        "languages": by_dim(&cur, "messages_in"),
        "senders": by_dim(&cur, "messages_out"),
        "ratings": by_dim(&cur, "ratings"),
        "feedback": {"helped": dim(&cur, "feedback", "helped"), "not_helped": dim(&cur, "feedback", "not_helped")},
        "suggestions": {"accepted": dim(&cur, "suggestions", "accepted"), "rejected": dim(&cur, "suggestions", "rejected")},
        "questions": {"total": questions, "answered": answered, "not_answered": dim(&cur, "questions", "not_answered")},
        "delivery_failed": total(&cur, "delivery_failed"),
        "top_rules": top_rules,
        "never_hit": never_hit,
        "heatmap": heatmap,
        "heatmap_max": heat_max,
        "team": team,
        "operators": operators,
    }))
}

/// One table of the report as CSV rows (header first): `series`, `rules`, `reasons`,
/// `languages`, `heatmap`, `operators`, `headlines`.
pub fn table(report: &Value, name: &str) -> Option<Vec<Vec<String>>> {
    let s = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let pairs = |key: &str, a: &str, b: &str| {
        let mut rows = vec![vec![a.to_string(), b.to_string()]];
        for p in report[key].as_array().into_iter().flatten() {
            rows.push(vec![s(&p[0]), s(&p[1])]);
        }
        rows
    };
    Some(match name {
        "series" => {
            let mut rows = vec![std::iter::once("start".to_string())
                .chain(SERIES.iter().map(|m| m.to_string()))
                .collect::<Vec<_>>()];
            for b in report["series"].as_array().into_iter().flatten() {
                let mut row = vec![s(&b["start"])];
                row.extend(
                    SERIES
                        .iter()
                        .map(|m| b["values"][*m].as_i64().unwrap_or(0).to_string()),
                );
                rows.push(row);
            }
            rows
        }
        "rules" => {
            let mut rows = vec![vec!["rule_id".into(), "title".into(), "hits".into()]];
            for r in report["top_rules"].as_array().into_iter().flatten() {
                rows.push(vec![s(&r["id"]), s(&r["title"]), s(&r["hits"])]);
            }
            rows
        }
        "reasons" => pairs("handover_reasons", "reason", "handovers"),
        "languages" => pairs("languages", "language", "messages_in"),
        "heatmap" => {
            let mut rows = vec![std::iter::once("weekday".to_string())
                .chain((0..24).map(|h| format!("{h:02}")))
                .collect::<Vec<_>>()];
            for (i, day) in report["heatmap"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let mut row = vec![(i + 1).to_string()];
                row.extend(day.as_array().into_iter().flatten().map(&s));
                rows.push(row);
            }
            rows
        }
        "operators" => {
            let cols = [
                "name",
                "conversations",
                "closed",
                "first_response_p50",
                "first_response_p90",
                "resolution_p50",
                "avg_rating",
            ];
            let mut rows = vec![cols.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
            for o in report["operators"].as_array().into_iter().flatten() {
                rows.push(cols.iter().map(|c| s(&o[*c])).collect());
            }
            rows
        }
        "headlines" => {
            let mut rows = vec![vec![
                "metric".into(),
                "value".into(),
                "previous".into(),
                "unit".into(),
            ]];
            for h in report["headlines"].as_array().into_iter().flatten() {
                rows.push(vec![
                    s(&h["key"]),
                    s(&h["value"]),
                    s(&h["previous"]),
                    s(&h["unit"]),
                ]);
            }
            rows
        }
        _ => return None,
    })
}

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return first) gets a leading `'`, so text written by end users or members cannot run
/// as one when an admin opens the export (numbers stay numbers).
fn neutral_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Leads every CSV we give out: the UTF-8 byte order mark, without which Excel reads the
/// file in the system's code page and turns Cyrillic into mojibake. (Our imports, and
/// most CSV readers, skip it.)
pub const CSV_BOM: &str = "\u{feff}";

/// A CSV file of `rows`, led by [`CSV_BOM`].
pub fn to_csv(rows: &[Vec<String>]) -> String {
    let mut w = csv::Writer::from_writer(CSV_BOM.as_bytes().to_vec());
    for r in rows {
        let _ = w.write_record(r.iter().map(|c| neutral_cell(c).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_local_days_with_the_previous_of_the_same_length() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 22, 30, 0).unwrap();
        let q = StatsQuery::default();
        // 22:30 UTC is already 11 March in Moscow (UTC+3).
        let r = resolve(&q, "Europe/Moscow", now).unwrap();
        assert_eq!(r.to_day.to_string(), "2026-03-11");
        assert_eq!(r.from_day.to_string(), "2026-02-10");
        assert_eq!(
            r.period.from,
            Utc.with_ymd_and_hms(2026, 2, 9, 21, 0, 0).unwrap()
        );
        assert_eq!(
            r.period.to,
            Utc.with_ymd_and_hms(2026, 3, 11, 21, 0, 0).unwrap()
        );
        assert_eq!(r.previous.to, r.period.from);
        assert_eq!(r.previous_from_day.to_string(), "2026-01-11");
        assert_eq!(r.granularity, Granularity::Day);
    }

    #[test]
    fn bad_periods_are_refused_with_the_field() {
        let now = Utc::now();
        let bad = |from: &str, to: &str, g: &str| {
            resolve(
                &StatsQuery {
                    from: Some(from.into()),
                    to: Some(to.into()),
                    granularity: Some(g.into()),
                },
                "UTC",
                now,
            )
            .unwrap_err()
            .field
        };
        assert_eq!(bad("2026-02-30", "2026-03-01", ""), "from");
        assert_eq!(bad("2026-03-02", "2026-03-01", ""), "from");
        assert_eq!(bad("2026-01-01", "2026-03-01", "hour"), "granularity");
        assert_eq!(bad("2026-01-01", "2026-01-02", "minute"), "granularity");
        // Years chrono parses but arithmetic or PostgreSQL could not take.
        assert_eq!(bad("2026-01-01", "+262143-12-31", ""), "to");
        assert_eq!(bad("-5000-01-01", "2026-01-02", ""), "from");
    }

    #[test]
    fn a_day_whose_midnight_does_not_exist_starts_at_one() {
        // Santiago moved its clocks from 00:00 to 01:00 on 7 September 2025 (UTC−4 → −3).
        let tz: Tz = "America/Santiago".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2025, 9, 7).unwrap();
        assert_eq!(
            local_midnight(tz, day),
            Utc.with_ymd_and_hms(2025, 9, 7, 4, 0, 0).unwrap()
        );
        let before = NaiveDate::from_ymd_opt(2025, 9, 6).unwrap();
        assert_eq!(
            local_midnight(tz, before),
            Utc.with_ymd_and_hms(2025, 9, 6, 4, 0, 0).unwrap()
        );
    }

    #[test]
    fn exported_cells_cannot_be_formulas() {
        let csv = to_csv(&[vec![
            "=HYPERLINK(\"http://x\")".into(),
            "@SUM(A1)".into(),
            "+7 999".into(),
            "-12".into(),
            "-0.5".into(),
            "plain = text".into(),
        ]]);
        assert_eq!(
            csv.trim_end(),
            "\u{feff}\"'=HYPERLINK(\"\"http://x\"\")\",'@SUM(A1),'+7 999,-12,-0.5,plain = text"
        );
    }

    #[test]
    fn today_starts_at_the_organizations_midnight() {
        let now: DateTime<Utc> = "2026-12-06T22:30:00Z".parse().unwrap();
        // Already December 7 in Moscow (UTC+3), since 21:00 UTC.
        assert_eq!(
            today_start("Europe/Moscow", now),
            "2026-12-06T21:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            today_start("UTC", now),
            "2026-12-06T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(today_start("Not/AZone", now), today_start("UTC", now));
    }
}
