//! Telegram's per-bot sending limit (about 30 messages per second), enforced per process,
//! and pauses ordered by a 429's `retry_after`.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_core::BotId;
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
}
