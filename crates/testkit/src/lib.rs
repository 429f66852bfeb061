//! Switchboard's test kit: a fake Telegram Bot API server and fresh PostgreSQL databases
//! per test. Used by the test suites and, as the `fake-telegram` program, by anyone who
//! wants to try the platform without Telegram.

pub mod db;
pub mod fake_oauth;
pub mod fake_telegram;
pub mod webdriver;

pub use db::TestDb;
pub use fake_oauth::FakeOAuth;
pub use fake_telegram::{
    FailKind, FakeBot, FakeTelegram, FakeUser, Limits, SentMessage, FAKE_PHOTO,
};
