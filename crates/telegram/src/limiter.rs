//! Telegram's per-bot sending limit (about 30 messages per second), enforced per process,
//! and pauses ordered by a 429's `retry_after`.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_core::{BotId, EndUserId};
use tokio::time::Instant;

pub struct BotRateLimiter {
    interval: Duration,
    next_free: Mutex<HashMap<BotId, Instant>>,
}

impl BotRateLimiter {
    pub fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next_free: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for this bot's next sending slot.
    pub async fn acquire(&self, bot: BotId) {
        let slot = {
            let mut map = self.next_free.lock();
            let now = Instant::now();
            let next = map.entry(bot).or_insert(now);
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Telegram told us to wait: no sends for this bot until then.
    pub fn pause(&self, bot: BotId, wait: Duration) {
        let until = Instant::now() + wait;
        let mut map = self.next_free.lock();
        let next = map.entry(bot).or_insert(until);
        *next = (*next).max(until);
    }
}

/// Spacing of messages to one chat. Only the worker holding a chat's lease sends to it,
/// so per-process memory is enough; entries expire as soon as they stop mattering.
#[derive(Default)]
pub struct ChatPacer {
    next: Mutex<HashMap<EndUserId, Instant>>,
}

impl ChatPacer {
    /// Waits for the chat's next slot and takes it: the following one is `interval` later.
    pub async fn take(&self, chat: EndUserId, interval: Duration) {
        loop {
            let wait = {
                let now = Instant::now();
                let mut map = self.next.lock();
                match map.get(&chat) {
                    Some(next) if *next > now => *next - now,
                    _ => {
                        if map.len() > 10_000 {
                            map.retain(|_, t| *t > now);
                        }
                        map.insert(chat, now + interval);
                        return;
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_per_bot() {
        let limiter = BotRateLimiter::new(10);
        let (a, b) = (BotId::new(), BotId::new());
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire(a).await;
        }
        assert!(start.elapsed() >= Duration::from_millis(400));
        let before_b = Instant::now();
        limiter.acquire(b).await;
        assert!(
            before_b.elapsed() < Duration::from_millis(10),
            "another bot is not held back"
        );
        limiter.pause(a, Duration::from_secs(3));
        let before = Instant::now();
        limiter.acquire(a).await;
        assert!(before.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn chats_are_paced_separately() {
        let pacer = ChatPacer::default();
        let (a, b) = (EndUserId::new(), EndUserId::new());
        let second = Duration::from_secs(1);
        let start = Instant::now();
        pacer.take(a, second).await;
        pacer.take(b, second).await;
        assert!(
            start.elapsed() < Duration::from_millis(10),
            "first slots are free"
        );
        pacer.take(a, second).await;
        assert!(
            start.elapsed() >= second,
            "the second message to a chat waits"
        );
    }
}
