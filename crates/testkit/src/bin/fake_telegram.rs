//! `fake-telegram`: a stand-in for the Telegram Bot API, to try Switchboard without
//! Telegram. Run `fake-telegram serve`, point the platform at it with
//! `SWITCHBOARD_TELEGRAM_API_URL`, then act as a Telegram user with `send` and `press`
//! and read the bot's replies with `messages`.

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "fake-telegram",
    about = "A fake Telegram Bot API server for trying Switchboard"
)]
struct Cli {
    /// Where the fake server listens (for the client commands: where to find it).
    #[arg(
        long,
        global = true,
        env = "FAKE_TELEGRAM_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    addr: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server; with --bot, create bots up front and print their tokens.
    Serve {
        #[arg(long = "bot")]
        bots: Vec<String>,
        /// Answer every Bot API call after this many milliseconds, or a range drawn
        /// uniformly ("50-300"), as Telegram's own latency.
        #[arg(long, value_name = "MS[-MS]")]
        latency_ms: Option<String>,
        /// Refuse (429, retry_after) a bot's sends beyond this many in any one second
        /// (Telegram: about 30).
        #[arg(long, value_name = "N")]
        bot_rate: Option<u32>,
        /// Refuse (429) a send to a chat within this many milliseconds of the last one
        /// (Telegram: about one a second).
        #[arg(long, value_name = "MS")]
        chat_interval_ms: Option<u64>,
    },
    /// Create a bot (prints its token).
    Bot { username: String },
    /// Send a text message to a bot as a Telegram user.
    Send {
        #[arg(long)]
        bot: String,
        /// The Telegram user id (also the private chat id).
        #[arg(long, default_value_t = 1001)]
        user: i64,
        #[arg(long, default_value = "Alice")]
        name: String,
        #[arg(long, default_value = "en")]
        lang: String,
        text: String,
    },
    /// Press an inline button (its callback data) under a bot's message.
    Press {
        #[arg(long)]
        bot: String,
        #[arg(long, default_value_t = 1001)]
        user: i64,
        #[arg(long, default_value = "Alice")]
        name: String,
        #[arg(long)]
        message_id: i64,
        data: String,
    },
    /// Show what the bot sent (to one chat with --chat).
    Messages {
        #[arg(long)]
        bot: String,
        #[arg(long)]
        chat: Option<i64>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let base = format!("http://{}", cli.addr);
    let http = reqwest::Client::new();
    match cli.command {
        Command::Serve {
            bots,
            latency_ms,
            bot_rate,
            chat_interval_ms,
        } => {
            let latency = match latency_ms.as_deref() {
                None => (0, 0),
                Some(text) => {
                    let (low, high) = text.split_once('-').unwrap_or((text, text));
                    let (low, high): (u64, u64) = (low.trim().parse()?, high.trim().parse()?);
                    anyhow::ensure!(low <= high, "--latency-ms: {low} is above {high}");
                    (low, high)
                }
            };
            let server = switchboard_testkit::FakeTelegram::bind(cli.addr.parse()?).await;
            server.set_limits(switchboard_testkit::Limits {
                latency_ms: latency,
                bot_per_second: bot_rate,
                chat_interval_ms,
            });
            println!("fake Telegram Bot API listening on {}", server.url());
            println!(
                "point Switchboard at it: SWITCHBOARD_TELEGRAM_API_URL={}",
                server.url()
            );
            for username in bots {
                let bot = server.add_bot(&username);
                println!("bot @{} token: {}", bot.username, bot.token);
            }
            tokio::signal::ctrl_c().await?;
        }
        Command::Bot { username } => {
            let v: Value = http
                .post(format!("{base}/_fake/bots"))
                .json(&json!({"username": username}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            println!("bot @{}", v["username"].as_str().unwrap_or_default());
            println!("{}", v["token"].as_str().unwrap_or_default());
        }
        Command::Send {
            bot,
            user,
            name,
            lang,
            text,
        } => {
            let v: Value = http
                .post(format!("{base}/_fake/bots/{bot}/send"))
                .json(&json!({"from": {"id": user, "first_name": name, "language_code": lang}, "text": text}))
                .send()
                .await?
                .json()
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Press {
            bot,
            user,
            name,
            message_id,
            data,
        } => {
            let v: Value = http
                .post(format!("{base}/_fake/bots/{bot}/press"))
                .json(&json!({"from": {"id": user, "first_name": name}, "data": data, "message_id": message_id}))
                .send()
                .await?
                .json()
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Messages { bot, chat } => {
            let mut url = format!("{base}/_fake/bots/{bot}/messages");
            if let Some(c) = chat {
                url.push_str(&format!("?chat_id={c}"));
            }
            let v: Value = http.get(url).send().await?.json().await?;
            for m in v.as_array().into_iter().flatten() {
                println!(
                    "#{} to chat {}: {}",
                    m["message_id"],
                    m["chat_id"],
                    m["text"].as_str().unwrap_or_default()
                );
                let rows = m["reply_markup"]["inline_keyboard"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for row in rows {
                    let labels: Vec<String> = row
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|b| match b.get("callback_data").and_then(Value::as_str) {
                            Some(d) => format!(
                                "[{}] (press with: {d})",
                                b["text"].as_str().unwrap_or_default()
                            ),
                            None => format!(
                                "[{}] → {}",
                                b["text"].as_str().unwrap_or_default(),
                                b["url"].as_str().unwrap_or_default()
                            ),
                        })
                        .collect();
                    println!("    {}", labels.join("  "));
                }
            }
        }
    }
    Ok(())
}
