//! The log's query parameters, shared by the log page, its export and
//! `GET /api/v1/events`: checked, then turned into the database's filter.

use super::*;

/// `GET …/logs?…` and `GET /api/v1/events?…`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// From this instant (RFC 3339) or local day (YYYY-MM-DD), included.
    pub from: Option<String>,
    /// Until this instant (RFC 3339) or local day (YYYY-MM-DD), included.
    pub to: Option<String>,
    pub end_user: Option<String>,
    pub conversation: Option<String>,
    /// `message.in`, `message.out`, `message.command`, `message.button`, an event kind
    /// (`conversation.handover`), or a prefix with `*` (`conversation.*`).
    pub kind: Option<String>,
    pub rule: Option<String>,
    pub operator: Option<String>,
    /// `pending`, `sending`, `sent`, `failed`.
    pub delivery: Option<String>,
    /// Words to find in message texts (Russian and English word forms).
    pub q: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    pub limit: Option<i64>,
}

impl LogQuery {
    /// The parameters without the cursor, as a query string (for links and exports).
    pub fn query_string(&self) -> String {
        let mut me = self.clone();
        me.after = None;
        me.limit = None;
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("from", &me.from),
            ("to", &me.to),
            ("end_user", &me.end_user),
            ("conversation", &me.conversation),
            ("kind", &me.kind),
            ("rule", &me.rule),
            ("operator", &me.operator),
            ("delivery", &me.delivery),
            ("q", &me.q),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                out.append_pair(k, v);
            }
        }
        out.finish()
    }

    /// Validates into a filter; a bad value is refused with its field.
    pub fn filter(&self, timezone: &str, default_limit: i64) -> Result<LogFilter, FieldError> {
        let tz: Tz = timezone.parse().unwrap_or(Tz::UTC);
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let instant = |field: &str,
                       v: &Option<String>,
                       end: bool|
         -> Result<Option<DateTime<Utc>>, FieldError> {
            let Some(v) = nonempty(v) else {
                return Ok(None);
            };
            if let Ok(t) = DateTime::parse_from_rfc3339(&v) {
                return Ok(Some(
                    t.with_timezone(&Utc)
                        + if end {
                            Duration::microseconds(1)
                        } else {
                            Duration::zero()
                        },
                ));
            }
            let day = parse_day(field, &v).map_err(|_| FieldError {
                field: field.to_string(),
                problem: Problem::coded(
                    "date_or_time",
                    format!("expected YYYY-MM-DD or an RFC 3339 time, got “{v}”"),
                )
                .with("value", &v),
            })?;
            Ok(Some(local_midnight(
                tz,
                if end { day + Duration::days(1) } else { day },
            )))
        };
        let id = |field: &str, v: &Option<String>| -> Result<Option<uuid::Uuid>, FieldError> {
            nonempty(v)
                .map(|s| {
                    s.parse().map_err(|_| FieldError {
                        field: field.to_string(),
                        problem: Problem::coded("not_an_id", format!("not an id: “{s}”"))
                            .with("value", &s),
                    })
                })
                .transpose()
        };
        let delivery = nonempty(&self.delivery);
        if let Some(d) = &delivery {
            if !matches!(d.as_str(), "pending" | "sending" | "sent" | "failed") {
                return Err(refused(
                    "delivery",
                    "delivery_status",
                    "one of pending, sending, sent, failed",
                ));
            }
        }
        let kind = nonempty(&self.kind);
        if let Some(k) = &kind {
            if k.len() > 64
                || !k
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_' || c == '*')
            {
                return Err(FieldError {
                    field: "kind".into(),
                    problem: Problem::coded("not_a_kind", format!("not a kind: “{k}”"))
                        .with("value", k),
                });
            }
        }
        let q = nonempty(&self.q);
        if q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(FieldError {
                field: "q".into(),
                problem: Problem::new("too_long")
                    .with("max", 200)
                    .with("len", q.as_ref().map_or(0, |q| q.chars().count())),
            });
        }
        let after = nonempty(&self.after)
            .map(|s| {
                Cursor::decode(&s)
                    .ok_or_else(|| refused("after", "cursor", "not a cursor from this log"))
            })
            .transpose()?;
        let limit = match self.limit {
            Some(l) if !(1..=500).contains(&l) => {
                return Err(FieldError {
                    field: "limit".into(),
                    problem: Problem::coded("between", "from 1 to 500")
                        .with("min", 1)
                        .with("max", 500),
                });
            }
            Some(l) => l,
            None => default_limit,
        };
        Ok(LogFilter {
            from: instant("from", &self.from, false)?,
            to: instant("to", &self.to, true)?,
            end_user: id("end_user", &self.end_user)?,
            conversation: id("conversation", &self.conversation)?,
            kind,
            rule: id("rule", &self.rule)?,
            operator: id("operator", &self.operator)?,
            delivery,
            q,
            after,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_parameters_are_checked() {
        let q = LogQuery {
            delivery: Some("lost".into()),
            ..Default::default()
        };
        assert_eq!(q.filter("UTC", 50).unwrap_err().field, "delivery");
        let q = LogQuery {
            end_user: Some("me".into()),
            ..Default::default()
        };
        assert_eq!(q.filter("UTC", 50).unwrap_err().field, "end_user");
        let q = LogQuery {
            after: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(q.filter("UTC", 50).unwrap_err().field, "after");
        let q = LogQuery {
            from: Some("2026-03-01".into()),
            to: Some("2026-03-01".into()),
            ..Default::default()
        };
        let f = q.filter("Europe/Moscow", 50).unwrap();
        assert_eq!(
            f.from,
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 21, 0, 0).unwrap())
        );
        assert_eq!(
            f.to,
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 21, 0, 0).unwrap())
        );
        let c = Cursor {
            at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
            source: 'e',
            id: 7,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        let q = LogQuery {
            after: Some("-300000000000000000.e.1".into()),
            ..Default::default()
        };
        assert_eq!(q.filter("UTC", 50).unwrap_err().field, "after");
    }
}
