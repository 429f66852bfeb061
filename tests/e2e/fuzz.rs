//! A property-based fuzzer driven by the API's own OpenAPI document: for every operation,
//! requests built from its declared parameters and body schema — with valid values, then
//! hostile ones (U+0000, CR/LF, huge strings and lists, wrong types, missing and unknown
//! fields, ids of nothing or of another organization) — against a running server. The
//! property: never a 5xx, and never a 2xx that touches another organization's object.
//! Seeded, so a failure is reproducible (`SWITCHBOARD_FUZZ_SEED`, `SWITCHBOARD_FUZZ_ROUNDS`).

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::harness::{alice, TestApp};

/// xorshift64*: small, deterministic, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn hostile_strings() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "ok".into(),
        "\u{0}".into(),
        "a\u{0}b".into(),
        "line\r\nInjected: header".into(),
        "<script>alert(1)</script>".into(),
        "<b>unclosed".into(),
        "' or 1=1 --".into(),
        "%00%0d%0a".into(),
        "../../etc/passwd".into(),
        "ёжик в тумане".into(),
        "🙂".repeat(3000),
        "x".repeat(70_000),
        "\u{202e}reversed".into(),
        "https://example.com".into(),
        "/prices".into(),
        "9999-99-99".into(),
        "-1".into(),
        "1e309".into(),
    ]
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// A value for a schema: usually of its type, sometimes hostile or of another type.
fn value_for(doc: &Value, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
    let schema = resolve(doc, schema);
    if rng.chance(10) {
        // Any type at all.
        return match rng.below(6) {
            0 => Value::Null,
            1 => json!(rng.pick(&hostile_strings())),
            2 => json!(-9_223_372_036_854_775_807i64),
            3 => json!(1.5e300),
            4 => json!([1, "two", null]),
            _ => json!({"nested": {"deeper": [{}]}}),
        };
    }
    if let Some(variants) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        if !variants.is_empty() {
            return value_for(doc, rng.pick(variants), rng, depth);
        }
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_string(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "object" if depth < 4 => {
            let mut out = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (name, prop) in props {
                    if rng.chance(85) {
                        out.insert(name.clone(), value_for(doc, prop, rng, depth + 1));
                    }
                }
            }
            if rng.chance(5) {
                out.insert("unknown_field".into(), json!(true));
            }
            Value::Object(out)
        }
        "array" if depth < 4 => {
            let n = if rng.chance(5) { 20_000 } else { rng.below(4) };
            let item = schema.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..n)
                    .map(|_| {
                        if n > 100 {
                            json!(format!("item {}", rng.below(1_000_000)))
                        } else {
                            value_for(doc, &item, rng, depth + 1)
                        }
                    })
                    .collect(),
            )
        }
        "integer" => json!(*rng.pick(&[0i64, 1, 5, -1, 30, 1000, 1001, i64::MAX, i64::MIN])),
        "number" => json!(*rng.pick(&[0.0f64, 0.5, 1.0, -0.1, 2.0, 1e30])),
        "boolean" => json!(rng.chance(50)),
        _ => {
            if schema["format"] == "uuid" && rng.chance(50) {
                json!(uuid::Uuid::now_v7())
            } else {
                json!(rng.pick(&hostile_strings()))
            }
        }
    }
}

/// A path or query value: the right kind of id usually, else something hostile.
fn param_value(rng: &mut Rng, ids: &[String]) -> String {
    match rng.below(10) {
        0..=4 => rng.pick(ids).clone(),
        5 => uuid::Uuid::now_v7().to_string(),
        6 => "-1".into(),
        7 => "%00".into(),
        8 => "a%0d%0aSet-Cookie:%20x=1".into(),
        _ => "9".repeat(40),
    }
}

fn query_value(rng: &mut Rng) -> String {
    rng.pick(&[
        "",
        "0",
        "1",
        "-5",
        "501",
        "999999999999999999999",
        "waiting",
        "closed",
        "nonsense",
        "2026-01-01",
        "2026-13-45",
        "+262143-12-31",
        "%00",
        "%0d%0a",
        "true",
        "conversation.*",
        "1733000000000000.e.1",
        "hour",
        "week",
    ])
    .to_string()
}

#[tokio::test]
async fn no_generated_request_gets_a_server_error_or_another_tenants_data() {
    let seed: u64 = std::env::var("SWITCHBOARD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d);
    let rounds: usize = std::env::var("SWITCHBOARD_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let app = TestApp::start().await;
    let mine = app.tenant("Fuzz").await;
    let theirs = app.tenant("Other").await;
    let my_bot = app.connect_bot(&mine, "fuzz_bot").await;
    let their_bot = app.connect_bot(&theirs, "other_bot").await;
    // Objects in both organizations, so generated ids hit real rows of each.
    let mut ids = Vec::new();
    let mut their_ids = Vec::new();
    for (t, out) in [(&mine, &mut ids), (&theirs, &mut their_ids)] {
        for (path, body) in [
            (
                "/api/v1/rules",
                json!({"title": "Hours", "answer": "9–18", "examples": ["hours"]}),
            ),
            (
                "/api/v1/menus",
                json!({"name": "Main", "text": "Choose", "is_main": true}),
            ),
            (
                "/api/v1/commands",
                json!({"command": "prices", "description": "p", "response": "r"}),
            ),
            (
                "/api/v1/canned-responses",
                json!({"shortcut": "hi", "title": "Hi", "text": "Hello"}),
            ),
        ] {
            let (s, v) = app.post(&t.token, path, body).await;
            assert_eq!(s, StatusCode::CREATED, "{path}: {v}");
            out.push(v["id"].as_str().unwrap().to_string());
        }
    }
    for (t, bot, out) in [
        (&mine, &my_bot, &mut ids),
        (&theirs, &their_bot, &mut their_ids),
    ] {
        app.say(bot, &alice(), "/operator").await;
        let conv = app.conversation(t, "waiting").await;
        out.push(conv["id"].as_str().unwrap().to_string());
        out.push(conv["user"]["id"].as_str().unwrap().to_string());
        let messages = app.messages(t, conv["id"].as_str().unwrap()).await;
        out.push(messages[0]["id"].to_string());
    }
    // My ids, and (rarely) theirs: a 2xx on one of theirs is a leak.
    let mut pool = ids.clone();
    pool.extend(their_ids.iter().cloned());

    let (_, doc) = app.get(&mine.token, "/api/v1/openapi.json").await;
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut sent = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            for _ in 0..rounds {
                let mut path = template.clone();
                let mut query = Vec::new();
                let mut used_theirs = false;
                for p in op["parameters"].as_array().cloned().unwrap_or_default() {
                    let name = p["name"].as_str().unwrap();
                    match p["in"].as_str() {
                        Some("path") => {
                            let v = param_value(&mut rng, &pool);
                            used_theirs |= their_ids.contains(&v);
                            path = path.replace(&format!("{{{name}}}"), &v);
                        }
                        Some("query") if rng.chance(60) => {
                            query.push(format!("{name}={}", query_value(&mut rng)));
                        }
                        _ => {}
                    }
                }
                if !query.is_empty() {
                    path = format!("{path}?{}", query.join("&"));
                }
                let body = op["requestBody"]["content"]["application/json"]["schema"]
                    .as_object()
                    .map(|s| value_for(&doc, &Value::Object(s.clone()), &mut rng, 0));
                let (status, answer) = app
                    .call(&mine.token, method.clone(), &path, body.clone())
                    .await;
                sent += 1;
                if status.is_server_error() {
                    failures.push(format!("{method} {path} {body:?} → {status} {answer}"));
                } else if used_theirs && status.is_success() {
                    failures.push(format!(
                        "{method} {path}: another tenant's object → {status}"
                    ));
                }
            }
        }
    }
    assert!(sent > 300, "only {sent} requests");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {sent} requests failed:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.chars().take(600).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The other organization is as it was.
    let (_, rules) = app.get(&theirs.token, "/api/v1/rules").await;
    assert_eq!(rules["items"].as_array().unwrap().len(), 1);
    assert_eq!(rules["items"][0]["title"], "Hours");
}
