//! End-to-end tests of the whole platform: real PostgreSQL (a fresh database per test),
//! the fake Telegram Bot API, the HTTP API and the job workers, all over real HTTP.

mod api;
mod bot_loop;
mod browser;
mod cli;
mod delivery;
mod desk;
mod fairness;
mod fuzz;
mod harness;
mod isolation;
mod matcher;
mod metrics;
mod models;
mod panel;
mod parity;
mod polling;
mod scale;
mod stats;
mod webhook;
