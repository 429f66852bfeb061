//! The webhook's group commit. An update the bot acts on is stored, decided and recorded
//! in one transaction before Telegram gets its 200. Done one update at a time, that is
//! five round trips and two large statements per update, and PostgreSQL's work per
//! statement — not per row — is what limits a busy platform (docs/performance.md). So
//! concurrent updates of different chats, of any organization, wait in one queue, and
//! whoever finds a free slot takes what is waiting (up to [`MAX_BATCH`]) and writes it
//! in one transaction: one statement to receive them all, one to record them all.
//!
//! - At low load a batch is one update, written exactly as before ([`Intake::act_one`]).
//! - A chat has one update being written at a time, in any batch: a chat's later update
//!   waits in the queue until the batch writing the earlier one has finished (fallback
//!   included), so one chat's updates keep their order, and its second update never
//!   misses the conversation its first is opening. Batches lock users and conversations
//!   in one order, so they never deadlock each other.
//! - An update Telegram delivered before (a duplicate) is answered as such and the batch
//!   is written again without it, so a redelivery changes nothing, as when alone.
//! - A batch that fails is rolled back and its updates are processed one by one (one at
//!   a time: the slot holds its share of the pool), so one bad update costs the others a
//!   retry, never their answer; the error each then gets is its own. When the database
//!   cannot be reached at all, every update of the batch gets that error at once.
//! - A batch runs in a task of its own, which then goes on with whatever waits: a
//!   webhook request that goes away (Telegram gave up waiting) cancels no update.
//! - The transaction runs as `switchboard_intake`, which row-level security confines to
//!   the organizations whose updates are in the batch.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use switchboard_core::bot::{decide, BotConfig, Context, SuggestionPick};
use switchboard_core::text::Lang;
use switchboard_core::{ConvStatus, ConversationId, Event, TenantId};
use switchboard_db::inbound::{self, InboundRecord, Incoming, OutboundRecord, Received, Record};
use switchboard_db::messages::Sender;
use switchboard_db::notify::Notifier;
use switchboard_db::{DbError, PgPool};
use switchboard_metrics::Metrics;
use teloxide::payloads::AnswerCallbackQuery;
use tokio::sync::{oneshot, Semaphore};

use crate::cache::BotEntry;
use crate::engine::{outbound_rows, EngineError, WebhookOutcome};
use crate::update::Act;
use crate::BotApi;

/// The most updates one batch writes.
pub const MAX_BATCH: usize = 32;

/// An update ready to be written: parsed, its organization's configuration and its
/// message's vector at hand.
pub(crate) struct Job {
    pub bot: Arc<BotEntry>,
    pub update_id: i64,
    pub raw: Value,
    pub act: Act,
    pub config: Arc<BotConfig>,
    pub vector: Option<Vec<f32>>,
}

impl Job {
    /// The chat: no batch holds two updates with the same key.
    fn chat(&self) -> Chat {
        (
            self.bot.tenant_id,
            self.bot.bot_id,
            self.act.user.telegram_user_id,
        )
    }
}

struct Waiting {
    job: Job,
    done: oneshot::Sender<Result<WebhookOutcome, EngineError>>,
}

type Chat = (TenantId, switchboard_core::BotId, i64);

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// The chats of the batches being written.
    writing: HashSet<Chat>,
}

/// The queue of updates waiting to be written and the slots (transactions) writing them.
pub struct Intake {
    pool: PgPool,
    api: BotApi,
    notifier: Notifier,
    metrics: Arc<Metrics>,
    queue: parking_lot::Mutex<Queue>,
    slots: Arc<Semaphore>,
}

/// What one update decided, to be written.
enum Decided {
    Rating(Rating),
    Record(Box<Record>),
}

/// A rating button: the rating goes on the closed conversation it names.
struct Rating {
    rated: ConversationId,
    rating: i16,
    inbound: InboundRecord,
}

impl Rating {
    /// Stores the rating in `tx`; the desk hears of it only when it was stored (the
    /// conversation is this user's and closed).
    async fn record(
        &self,
        tx: &mut switchboard_db::PgConnection,
        tenant: TenantId,
        received: &Received,
        after: &mut After,
    ) -> Result<(), EngineError> {
        let stored = inbound::record_rating(
            tx,
            tenant,
            received.end_user.id,
            self.rated,
            self.rating,
            &self.inbound,
        )
        .await?;
        if !stored {
            after.desk = None;
        }
        Ok(())
    }
}

/// What to do once an update is committed.
struct After {
    bot: Arc<BotEntry>,
    callback: Option<(String, String)>,
    /// The desk's event for the conversation, if any.
    desk: Option<(ConversationId, &'static str)>,
    queued: bool,
}

impl Intake {
    /// `slots`: how many batches may be written at once (each holds a connection).
    pub fn new(
        pool: PgPool,
        api: BotApi,
        notifier: Notifier,
        metrics: Arc<Metrics>,
        slots: usize,
    ) -> Self {
        Self {
            pool,
            api,
            notifier,
            metrics,
            queue: parking_lot::Mutex::new(Queue::default()),
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// Queues `job` and returns once it is committed (or failed): this request writes
    /// the queue's batch itself when a slot is free, or waits for another to.
    pub(crate) async fn submit(self: &Arc<Self>, job: Job) -> Result<WebhookOutcome, EngineError> {
        let (done, mut outcome) = oneshot::channel();
        self.queue.lock().waiting.push_back(Waiting { job, done });
        loop {
            tokio::select! {
                biased;
                result = &mut outcome => return result.unwrap_or(Err(EngineError::Interrupted)),
                permit = self.slots.clone().acquire_owned() => {
                    let permit = permit.expect("the slots are never closed");
                    let batch = self.take(&[]);
                    if batch.is_empty() {
                        // This update is in another batch, or waits for its chat's batch,
                        // which takes it when it ends.
                        drop(permit);
                        return outcome.await.unwrap_or(Err(EngineError::Interrupted));
                    }
                    let this = self.clone();
                    tokio::spawn(async move {
                        let mut batch = batch;
                        while !batch.is_empty() {
                            let chats: Vec<Chat> = batch.iter().map(|w| w.job.chat()).collect();
                            // A panic answers the batch's requests with an error (their
                            // senders dropped) and must not keep its chats' later updates
                            // waiting: the chats are released and the queue served on.
                            let run = std::panic::AssertUnwindSafe(this.run(batch));
                            if futures::FutureExt::catch_unwind(run).await.is_err() {
                                tracing::error!("writing a batch of updates panicked");
                            }
                            batch = this.take(&chats);
                        }
                        drop(permit);
                    });
                }
            }
        }
    }

    /// Marks the chats of `done` as written, then takes the oldest waiting updates of
    /// chats not being written, at most one per chat (a chat's later update stays queued,
    /// ahead of newer ones) and at most [`MAX_BATCH`].
    fn take(&self, done: &[Chat]) -> Vec<Waiting> {
        let mut queue = self.queue.lock();
        for chat in done {
            queue.writing.remove(chat);
        }
        let Queue { waiting, writing } = &mut *queue;
        let mut batch = Vec::new();
        let mut left = VecDeque::new();
        while let Some(w) = waiting.pop_front() {
            if batch.len() == MAX_BATCH {
                left.push_back(w);
                break;
            }
            if writing.insert(w.job.chat()) {
                batch.push(w);
            } else {
                left.push_back(w);
            }
        }
        left.extend(waiting.drain(..));
        *waiting = left;
        batch
    }

    async fn run(&self, mut batch: Vec<Waiting>) {
        self.metrics.webhook_batch_observe(batch.len());
        if batch.len() == 1 {
            let waiting = batch.pop().expect("one");
            let result = self.act_one(&waiting.job).await;
            let _ = waiting.done.send(result);
            return;
        }
        match self.act_batch(&batch).await {
            Ok(outcomes) => {
                for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = waiting.done.send(Ok(outcome));
                }
            }
            Err(EngineError::Db(e)) if e.is_unavailable() => {
                tracing::warn!(updates = batch.len(), error = %e, "the database is unavailable; a batch of updates fails");
                for waiting in batch {
                    let _ = waiting
                        .done
                        .send(Err(EngineError::Db(unavailable_like(&e))));
                }
            }
            Err(e) => {
                tracing::warn!(updates = batch.len(), error = %e, "a batch of updates failed; processing them one by one");
                self.metrics.webhook_batch_failed();
                for waiting in batch {
                    let result = self.act_one(&waiting.job).await;
                    let _ = waiting.done.send(result);
                }
            }
        }
    }

    /// One update in a transaction of its own, scoped to its organization.
    pub(crate) async fn act_one(&self, job: &Job) -> Result<WebhookOutcome, EngineError> {
        // The first statement's snapshot predates the end-user row lock it waits for, so
        // a conversation opened by a concurrent update of the same new chat can be
        // invisible to it; the unique index then refuses a second open conversation and
        // we simply run the update again.
        let mut attempt = 0;
        loop {
            match self.try_one(job).await {
                Err(EngineError::Db(DbError::Conflict { constraint }))
                    if constraint == "conversations_one_open_per_user" && attempt < 3 =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_one(&self, job: &Job) -> Result<WebhookOutcome, EngineError> {
        let tenant = job.bot.tenant_id;
        let mut tx = switchboard_db::begin_scoped(&self.pool, tenant).await?;
        let received = inbound::receive(
            &mut tx,
            tenant,
            job.bot.bot_id,
            job.update_id,
            &job.raw,
            &job.act.user,
        )
        .await?;
        if !received.fresh {
            return Ok(WebhookOutcome::Duplicate);
        }
        let (decided, mut after) = self.decide(job, &received);
        match decided {
            Decided::Rating(rating) => {
                rating
                    .record(&mut tx, tenant, &received, &mut after)
                    .await?
            }
            Decided::Record(record) => inbound::record(&mut tx, tenant, &record).await?,
        }
        tx.commit().await?;
        self.after(after);
        Ok(WebhookOutcome::Processed)
    }

    /// Several updates of different chats in one transaction. An update received before
    /// (Telegram delivered it again) is answered as a duplicate and the batch written
    /// again without it, so that it changes nothing — as when it comes alone.
    async fn act_batch(&self, batch: &[Waiting]) -> Result<Vec<WebhookOutcome>, EngineError> {
        let mut outcomes = vec![WebhookOutcome::Duplicate; batch.len()];
        // The updates not (yet) found to be duplicates, by their place in `batch`.
        let mut fresh: Vec<usize> = (0..batch.len()).collect();
        let (mut tx, received) = loop {
            if fresh.is_empty() {
                return Ok(outcomes);
            }
            let mut tenants: Vec<TenantId> =
                fresh.iter().map(|&i| batch[i].job.bot.tenant_id).collect();
            tenants.sort();
            tenants.dedup();
            let mut tx = switchboard_db::begin_intake(&self.pool, &tenants).await?;
            let incoming: Vec<Incoming> = fresh
                .iter()
                .map(|&i| {
                    let job = &batch[i].job;
                    Incoming {
                        tenant: job.bot.tenant_id,
                        bot: job.bot.bot_id,
                        update_id: job.update_id,
                        payload: &job.raw,
                        user: &job.act.user,
                    }
                })
                .collect();
            let received = inbound::receive_batch(&mut tx, &incoming).await?;
            if received.iter().all(|r| r.fresh) {
                break (tx, received);
            }
            tx.rollback().await?;
            let mut kept = received.iter().map(|r| r.fresh);
            fresh.retain(|_| kept.next().unwrap_or(false));
        };
        let mut records = Vec::new();
        let mut afters = Vec::new();
        for (&i, received) in fresh.iter().zip(&received) {
            let job = &batch[i].job;
            let tenant = job.bot.tenant_id;
            let (decided, mut after) = self.decide(job, received);
            match decided {
                Decided::Rating(rating) => {
                    rating.record(&mut tx, tenant, received, &mut after).await?
                }
                Decided::Record(record) => records.push((tenant, record)),
            }
            afters.push(after);
            outcomes[i] = WebhookOutcome::Processed;
        }
        if !records.is_empty() {
            let records: Vec<(TenantId, &Record)> =
                records.iter().map(|(t, r)| (*t, r.as_ref())).collect();
            inbound::record_batch(&mut tx, &records).await?;
        }
        tx.commit().await?;
        for after in afters {
            self.after(after);
        }
        Ok(outcomes)
    }

    /// Decides what the bot does with an update, given what [`inbound::receive`] found.
    fn decide(&self, job: &Job, received: &Received) -> (Decided, After) {
        let (bot, act, config) = (&job.bot, &job.act, &job.config);
        let end_user = received.end_user.id;
        let before = received
            .conversation
            .map_or(ConvStatus::Closed, |(_, status, _)| status);
        let context = Context {
            // The update's language, else the one stored for the user (the receive keeps
            // it when an update, a button press say, comes without one).
            lang: received
                .end_user
                .language_code
                .as_deref()
                .and_then(Lang::from_code),
            now: chrono::Utc::now(),
            vector: job.vector.clone(),
        };
        let deciding = std::time::Instant::now();
        let decision = decide(config, before, &act.inbound, context);
        self.metrics.matcher_observe(deciding.elapsed());
        let callback = act.callback_query_id.clone().zip(decision.callback_answer);

        if let Some((rated, rating)) = decision.rating {
            let inbound = InboundRecord {
                kind: "rating".into(),
                text: "★".repeat(rating as usize),
                update_id: job.update_id,
                telegram_message_id: act.telegram_message_id,
                ..Default::default()
            };
            let after = After {
                bot: bot.clone(),
                callback,
                desk: Some((rated, "rating")),
                queued: false,
            };
            return (
                Decided::Rating(Rating {
                    rated,
                    rating,
                    inbound,
                }),
                after,
            );
        }

        let (conversation, new_conversation) = match received.conversation {
            Some((id, _, _)) => (id, false),
            None => (ConversationId::new(), true),
        };
        let mut events = Vec::new();
        if new_conversation {
            events.push(Event::ConversationOpened {});
        }
        if let Some(reason) = decision.handover {
            events.push(Event::ConversationHandover {
                reason: reason.as_str().into(),
                from: before.as_str().into(),
            });
        }
        if let Some((button_id, label)) = &decision.button {
            events.push(Event::ButtonPressed {
                button_id: button_id.to_string(),
                label: label.clone(),
            });
        }
        let mut picked_rule = None;
        match &decision.suggestion {
            Some(SuggestionPick::Rule(rule, _)) => {
                picked_rule = Some(*rule);
                events.push(Event::SuggestionAccepted { rule_id: rule.0 });
            }
            Some(SuggestionPick::None(_)) => events.push(Event::SuggestionRejected {}),
            None => {}
        }
        if let Some((rule, helped)) = decision.feedback {
            picked_rule = Some(rule);
            events.push(Event::AnswerFeedback {
                rule_id: rule.0,
                helped,
            });
        }
        let matched = decision.matched.as_ref();
        let text = match (&decision.button, &decision.suggestion, decision.feedback) {
            (Some((_, label)), _, _) => label.clone(),
            (_, Some(SuggestionPick::Rule(_, title)), _) => title.clone(),
            (_, Some(SuggestionPick::None(label)), _) => label.clone(),
            (_, _, Some((_, true))) => config.texts.feedback_yes.clone(),
            (_, _, Some((_, false))) => config.texts.feedback_no.clone(),
            _ => act.text.clone(),
        };
        let outbound: Vec<OutboundRecord> =
            outbound_rows(conversation, end_user, Sender::Bot, &decision.replies)
                .into_iter()
                .map(|o| OutboundRecord {
                    text: o.text,
                    payload: o.payload,
                    rule_id: o.rule_id,
                })
                .collect();
        // The desk hears of a new conversation in the queue ("handover") and of every
        // message of a conversation that is with people ("inbound").
        let desk = if decision.status.with_humans() && !before.with_humans() {
            Some((conversation, "handover"))
        } else if decision.status.with_humans() || before.with_humans() {
            Some((conversation, "inbound"))
        } else {
            None
        };
        let after = After {
            bot: bot.clone(),
            callback,
            desk,
            queued: !outbound.is_empty() && !bot.sandbox,
        };
        let record = Record {
            bot: bot.bot_id,
            end_user,
            conversation,
            new_conversation,
            status: decision.status,
            handover_reason: decision.handover.map(|h| h.as_str()),
            inbound: InboundRecord {
                kind: act.kind.clone(),
                text,
                payload: act.payload.clone(),
                rule_id: picked_rule.or(matched.and_then(|m| m.rule_id)),
                score: matched.map(|m| m.score),
                match_info: matched
                    .map(|m| serde_json::to_value(m).expect("match info serialises")),
                update_id: job.update_id,
                telegram_message_id: act.telegram_message_id,
            },
            outbound,
            events,
            sandbox: bot.sandbox,
        };
        (Decided::Record(Box::new(record)), after)
    }

    /// What follows a commit: delivery woken, the desk told, the button's spinner stopped.
    fn after(&self, after: After) {
        if after.queued {
            self.notifier.deliveries_queued();
        }
        if let Some((conversation, event)) = after.desk {
            self.notifier.desk(after.bot.tenant_id, conversation, event);
        }
        if let Some((query_id, answer)) = after.callback {
            self.answer_callback(after.bot, query_id, answer);
        }
    }

    /// Stops the button's spinner in the user's app. Best effort, off the request path.
    /// The panel's Try it has no Telegram behind it (and its bot no token): nothing to stop.
    fn answer_callback(&self, bot: Arc<BotEntry>, query_id: String, text: String) {
        if bot.sandbox {
            return;
        }
        let api = self.api.clone();
        tokio::spawn(async move {
            let mut payload = AnswerCallbackQuery::new(teloxide::types::CallbackQueryId(query_id));
            if !text.is_empty() {
                payload.text = Some(text);
            }
            if let Err(e) = api.call(bot.token(), &payload).await {
                tracing::warn!(tenant = %bot.tenant_id, bot = %bot.bot_id, error = %e, "answerCallbackQuery failed");
            }
        });
    }
}

/// The same unavailability again, for each update of a batch that met it.
fn unavailable_like(e: &DbError) -> DbError {
    DbError::Sqlx(match e {
        DbError::Sqlx(sqlx::Error::PoolTimedOut) => sqlx::Error::PoolTimedOut,
        DbError::Sqlx(sqlx::Error::PoolClosed) => sqlx::Error::PoolClosed,
        DbError::Sqlx(sqlx::Error::WorkerCrashed) => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::Io(std::io::Error::other(other.to_string())),
    })
}
