//! The log's export: CSV or JSON lines, streamed page by page.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

const EXPORT_COLUMNS: [&str; 16] = [
    "time",
    "source",
    "id",
    "kind",
    "actor_type",
    "actor_id",
    "actor",
    "end_user_id",
    "end_user",
    "conversation_id",
    "text",
    "rule_id",
    "rule",
    "score",
    "delivery_status",
    "delivery_error",
];

fn csv_line(fields: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(fields.iter().map(|c| neutral_cell(c).into_owned()));
    w.into_inner().unwrap_or_default()
}

fn csv_entry(e: &switchboard_db::log::LogEntry) -> Vec<u8> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let u = |v: &Option<uuid::Uuid>| v.map(|x| x.to_string()).unwrap_or_default();
    csv_line(&[
        e.created_at.to_rfc3339(),
        e.source.clone(),
        e.id.to_string(),
        e.kind.clone(),
        e.actor_type.clone(),
        o(&e.actor_id),
        o(&e.actor_name),
        u(&e.end_user_id),
        o(&e.end_user_name),
        u(&e.conversation_id),
        e.text.clone(),
        u(&e.rule_id),
        o(&e.rule_title),
        e.score.map(|s| format!("{s:.3}")).unwrap_or_default(),
        e.delivery_status.map(|d| d.to_string()).unwrap_or_default(),
        o(&e.delivery_error),
    ])
}

/// The filtered log as a streamed body: pages of 1,000 entries are read one after another
/// (keyset), so an export of millions of rows never sits in memory.
pub fn export_body(
    pool: PgPool,
    tenant: TenantId,
    mut filter: LogFilter,
    format: ExportFormat,
) -> axum::body::Body {
    enum Step {
        Start(LogFilter),
        Next(LogFilter, bool),
        Done,
    }
    filter.limit = 1000;
    let stream = futures::stream::unfold(Step::Start(filter), move |step| {
        let pool = pool.clone();
        async move {
            match step {
                Step::Start(f) => {
                    let head = match format {
                        ExportFormat::Csv => {
                            let mut head = super::CSV_BOM.as_bytes().to_vec();
                            head.extend(csv_line(&EXPORT_COLUMNS.map(String::from)));
                            head
                        }
                        ExportFormat::Json => b"[".to_vec(),
                    };
                    Some((Ok::<_, std::io::Error>(head), Step::Next(f, true)))
                }
                Step::Next(mut f, first) => {
                    let page = match switchboard_db::log::page(&pool, tenant, &f).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(error = %e, tenant = %tenant, "log export failed");
                            return Some((Err(std::io::Error::other("export failed")), Step::Done));
                        }
                    };
                    let Some(last) = page.last() else {
                        let tail = match format {
                            ExportFormat::Csv => Vec::new(),
                            ExportFormat::Json => b"]\n".to_vec(),
                        };
                        return Some((Ok(tail), Step::Done));
                    };
                    f.after = Some(last.cursor());
                    let mut chunk = Vec::with_capacity(page.len() * 200);
                    for (i, e) in page.iter().enumerate() {
                        match format {
                            ExportFormat::Csv => chunk.extend(csv_entry(e)),
                            ExportFormat::Json => {
                                if !(first && i == 0) {
                                    chunk.push(b',');
                                }
                                chunk.push(b'\n');
                                chunk.extend(serde_json::to_vec(e).unwrap_or_default());
                            }
                        }
                    }
                    Some((Ok(chunk), Step::Next(f, false)))
                }
                Step::Done => None,
            }
        }
    });
    axum::body::Body::from_stream(stream)
}
