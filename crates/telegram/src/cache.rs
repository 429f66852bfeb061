//! Per-process caches of what every update needs (bot clients with their decrypted tokens,
//! each tenant's bot configuration and matcher index), invalidated across replicas by
//! PostgreSQL notifications on the `switchboard_config` channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::lru::Lru;
use sqlx::PgPool;
use switchboard_core::bot::{BotConfig, Command, Menu, Rule};
use switchboard_core::matcher::{MatcherIndex, RuleSpec, SentenceEncoder};
use switchboard_core::text::Lang;
use switchboard_core::vault::{SecretPurpose, Vault};
use switchboard_core::{BotId, RuleId, TenantId};
use switchboard_db::config::{rows_of, ButtonRow};
use switchboard_db::vectors as stored_vectors;
use switchboard_db::{bots, config, rules, DbError};
use zeroize::Zeroizing;

/// The notification channel for configuration changes (payload: tenant id).
pub const CONFIG_CHANNEL: &str = "switchboard_config";

/// A connected bot as the webhook and delivery need it.
pub struct BotEntry {
    pub tenant_id: TenantId,
    pub bot_id: BotId,
    pub public_id: String,
    pub username: String,
    pub webhook_secret_hash: Vec<u8>,
    /// The tenant's "Try it" bot: replies are stored as delivered, nothing goes to Telegram.
    pub sandbox: bool,
    token: Zeroizing<String>,
}

impl BotEntry {
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The sandbox bot of a tenant (no token, no webhook).
    pub fn sandbox(tenant_id: TenantId, bot_id: BotId) -> Self {
        Self {
            tenant_id,
            bot_id,
            public_id: String::new(),
            username: "sandbox".into(),
            webhook_secret_hash: Vec::new(),
            sandbox: true,
            token: Zeroizing::new(String::new()),
        }
    }
}

impl std::fmt::Debug for BotEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotEntry")
            .field("tenant_id", &self.tenant_id)
            .field("bot_id", &self.bot_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the bot token cannot be decrypted: {0}")]
    Vault(#[from] switchboard_core::vault::VaultError),
}

/// Caches keyed by tenant, with a generation counter so that a load racing with an
/// invalidation never stores stale data. Each holds at most `capacity` tenants (the
/// least recently used are forgotten and loaded again when next needed), so a process
/// serving many tenants stays bounded.
pub struct Caches {
    pool: PgPool,
    vault: Arc<Vault>,
    generation: AtomicU64,
    /// Live bots by the public id in their webhook URL…
    bots: RwLock<Lru<String, Arc<BotEntry>>>,
    /// …and by tenant and id (delivery).
    bots_by_id: RwLock<Lru<(TenantId, BotId), Arc<BotEntry>>>,
    configs: RwLock<Lru<TenantId, Arc<BotConfig>>>,
    /// The matcher's optional semantic stage (a sentence-embedding model).
    encoder: RwLock<Option<Arc<dyn SentenceEncoder>>>,
    /// Matcher index builds are CPU work: they run off the async threads, at most one per
    /// core at a time, and one per tenant (a burst of updates after a change waits for
    /// the one build instead of starting its own).
    builds: Arc<tokio::sync::Semaphore>,
    /// Messages being encoded: at most one per core (see [`Caches::encode_message`]).
    encodes: Arc<tokio::sync::Semaphore>,
    /// Each tenant's messages waiting for a core or being encoded (see
    /// [`Caches::encode_message`]); tenants with none are not kept.
    encode_turns: Arc<parking_lot::Mutex<HashMap<TenantId, usize>>>,
    /// A tenant's places in it at most: one per core (counted once, not per message).
    encodes_per_tenant: usize,
    building: parking_lot::Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    /// Tenants whose rule texts are being encoded in the background (see
    /// [`BACKGROUND_TEXTS`]), each with a flag set when that is done.
    encoding: Arc<Encoding>,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// How long a message waits for a core to encode it before it is matched lexically.
pub const ENCODE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// One of a tenant's places in the encoding queue, given back when dropped (also when the
/// request is cancelled while it waits).
struct EncodeTurn {
    turns: Arc<parking_lot::Mutex<HashMap<TenantId, usize>>>,
    tenant: TenantId,
}

impl EncodeTurn {
    fn take(
        turns: &Arc<parking_lot::Mutex<HashMap<TenantId, usize>>>,
        tenant: TenantId,
        most: usize,
    ) -> Option<Self> {
        let mut map = turns.lock();
        let n = map.entry(tenant).or_insert(0);
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(Self {
            turns: turns.clone(),
            tenant,
        })
    }
}

impl Drop for EncodeTurn {
    fn drop(&mut self) {
        let mut map = self.turns.lock();
        if let Some(n) = map.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.tenant);
            }
        }
    }
}

/// What [`Caches::encode_message`] did.
pub enum Encoded {
    /// The message's vector, and the time the model took.
    Vector(Vec<f32>, std::time::Duration),
    /// No semantic stage, or the model failed: lexical matching.
    None,
    /// Every core was encoding for longer than [`ENCODE_WAIT`], or this tenant's messages
    /// already had every core: lexical matching, so a flood of messages costs each one at
    /// most that much waiting, not a growing queue, and costs other tenants nothing.
    Busy,
}

/// More new rule texts than this are encoded in the background: meanwhile the tenant's
/// bot matches with the vectors it has (and lexically when it has none), and when the
/// vectors are stored its index is built again (in moments: every vector is then read,
/// none encoded). Fewer are encoded at once.
pub const BACKGROUND_TEXTS: usize = 64;

/// The background encodings under way, by tenant.
#[derive(Default)]
pub struct Encoding(parking_lot::Mutex<HashMap<TenantId, Arc<std::sync::atomic::AtomicBool>>>);

impl Encoding {
    /// A new background encoding for `tenant`, unless one is under way (then `None`).
    fn start(&self, tenant: TenantId) -> Option<Arc<std::sync::atomic::AtomicBool>> {
        let mut map = self.0.lock();
        if map
            .get(&tenant)
            .is_some_and(|done| !done.load(Ordering::SeqCst))
        {
            return None;
        }
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        map.insert(tenant, done.clone());
        Some(done)
    }

    /// Whether a background encoding of `tenant` has finished since the last call.
    fn finished(&self, tenant: TenantId) -> bool {
        let mut map = self.0.lock();
        if map
            .get(&tenant)
            .is_some_and(|done| done.load(Ordering::SeqCst))
        {
            map.remove(&tenant);
            return true;
        }
        false
    }
}

impl Caches {
    /// Caches of at most `capacity` tenants each.
    pub fn new(pool: PgPool, vault: Arc<Vault>, capacity: usize) -> Self {
        Self {
            pool,
            vault,
            generation: AtomicU64::new(0),
            bots: RwLock::new(Lru::new(capacity)),
            bots_by_id: RwLock::new(Lru::new(capacity)),
            configs: RwLock::new(Lru::new(capacity)),
            encoder: RwLock::new(None),
            builds: Arc::new(tokio::sync::Semaphore::new(cores())),
            encodes: Arc::new(tokio::sync::Semaphore::new(cores())),
            encode_turns: Arc::default(),
            encodes_per_tenant: cores(),
            building: parking_lot::Mutex::new(HashMap::new()),
            encoding: Arc::default(),
        }
    }

    /// Forgets everything cached for a tenant.
    pub fn invalidate(&self, tenant: TenantId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.configs.write().remove(&tenant);
        self.bots.write().retain(|_, b| b.tenant_id != tenant);
        self.bots_by_id.write().retain(|(t, _), _| *t != tenant);
    }

    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.configs.write().clear();
        self.bots.write().clear();
        self.bots_by_id.write().clear();
    }

    /// How many tenants' configurations and bots are cached (for `/metrics`).
    pub fn sizes(&self) -> (usize, usize) {
        (self.configs.read().len(), self.bots_by_id.read().len())
    }

    fn entry_from_row(&self, row: &bots::Bot) -> Result<Option<BotEntry>, CacheError> {
        let (Some(sealed), Some(secret_hash)) =
            (row.sealed_token(), row.webhook_secret_hash.clone())
        else {
            return Ok(None);
        };
        let plain = self.vault.open(
            SecretPurpose::BotToken {
                tenant: row.tenant_id,
                bot: row.id,
            },
            &sealed,
        )?;
        let token = Zeroizing::new(String::from_utf8_lossy(&plain).into_owned());
        Ok(Some(BotEntry {
            tenant_id: row.tenant_id,
            bot_id: row.id,
            public_id: row.public_id.clone(),
            username: row.username.clone(),
            webhook_secret_hash: secret_hash,
            sandbox: false,
            token,
        }))
    }

    /// The live bot a webhook URL names.
    pub async fn bot_by_public_id(
        &self,
        public_id: &str,
    ) -> Result<Option<Arc<BotEntry>>, CacheError> {
        if let Some(b) = self.bots.read().get(public_id) {
            return Ok(Some(b));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Some(row) = bots::find_live_by_public_id(&self.pool, public_id).await? else {
            return Ok(None);
        };
        let Some(entry) = self.entry_from_row(&row)? else {
            return Ok(None);
        };
        let entry = Arc::new(entry);
        self.store_bot(generation, &entry);
        Ok(Some(entry))
    }

    /// A tenant's bot by id (live or not: delivery of already-decided messages).
    pub async fn bot(
        &self,
        tenant: TenantId,
        bot: BotId,
    ) -> Result<Option<Arc<BotEntry>>, CacheError> {
        if let Some(b) = self.bots_by_id.read().get(&(tenant, bot)) {
            return Ok(Some(b));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let row = match bots::get(&self.pool, tenant, bot).await {
            Ok(r) => r,
            Err(DbError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(entry) = self.entry_from_row(&row)? else {
            return Ok(None);
        };
        let entry = Arc::new(entry);
        if row.status == "active" || row.status == "error" {
            self.store_bot(generation, &entry);
        }
        Ok(Some(entry))
    }

    fn store_bot(&self, generation: u64, entry: &Arc<BotEntry>) {
        let (mut by_public, mut by_id) = (self.bots.write(), self.bots_by_id.write());
        if self.generation.load(Ordering::SeqCst) == generation {
            by_public.insert(entry.public_id.clone(), entry.clone());
            by_id.insert((entry.tenant_id, entry.bot_id), entry.clone());
        }
    }

    /// Turns the matcher's semantic stage on: every configuration built from now on gets
    /// its rules' sentence vectors from `encoder`.
    pub fn set_encoder(&self, encoder: Arc<dyn SentenceEncoder>) {
        *self.encoder.write() = Some(encoder);
        self.configs.write().clear();
    }

    /// A message's sentence vector, encoded off the async threads, at most one message per
    /// core at a time (texts seen before come from the encoder's cache).
    ///
    /// Fair between tenants: a tenant has at most one message per core waiting for a core
    /// or being encoded; its next ones are matched lexically at once. So one tenant's flood
    /// of free text can keep every core busy but queues nothing behind them, and another
    /// tenant's message waits for about one encoding to finish, not behind the flood — the
    /// flooding tenant's messages are the ones that lose the semantic stage when the cores
    /// cannot keep up.
    pub async fn encode_message(&self, tenant: TenantId, text: &str) -> Encoded {
        let Some(encoder) = self.encoder() else {
            return Encoded::None;
        };
        let Some(_turn) = EncodeTurn::take(&self.encode_turns, tenant, self.encodes_per_tenant)
        else {
            return Encoded::Busy;
        };
        let permit =
            match tokio::time::timeout(ENCODE_WAIT, self.encodes.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                _ => return Encoded::Busy,
            };
        let text = text.to_string();
        let encoded = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let started = std::time::Instant::now();
            let vector = encoder.encode(&[text.as_str()]).pop();
            vector.map(|v| (v, started.elapsed()))
        })
        .await;
        match encoded {
            Ok(Some((v, took))) if !v.is_empty() => Encoded::Vector(v, took),
            _ => Encoded::None,
        }
    }

    /// The sentence encoder of the semantic stage, if on.
    pub fn encoder(&self) -> Option<Arc<dyn SentenceEncoder>> {
        self.encoder.read().clone()
    }

    /// The tenant's bot configuration (texts, menus, rules with the matcher index, commands).
    pub async fn config(&self, tenant: TenantId) -> Result<Arc<BotConfig>, CacheError> {
        if self.encoding.finished(tenant) {
            // The rules' vectors are stored now: build the index again, with them.
            self.configs.write().remove(&tenant);
        }
        if let Some(c) = self.configs.read().get(&tenant) {
            return Ok(c);
        }
        let gate = self.building.lock().entry(tenant).or_default().clone();
        let built = {
            let _one_at_a_time = gate.lock().await;
            let cached = self.configs.read().get(&tenant);
            match cached {
                // Built meanwhile by the request we waited for.
                Some(c) => Ok(c),
                None => {
                    let generation = self.generation.load(Ordering::SeqCst);
                    let loaded = load_config(
                        &self.pool,
                        tenant,
                        self.encoder(),
                        &self.builds,
                        &self.encoding,
                    )
                    .await;
                    loaded.map(|config| {
                        let config = Arc::new(config);
                        let mut map = self.configs.write();
                        if self.generation.load(Ordering::SeqCst) == generation {
                            map.insert(tenant, config.clone());
                        }
                        config
                    })
                }
            }
        };
        {
            let mut building = self.building.lock();
            if building
                .get(&tenant)
                .is_some_and(|g| Arc::strong_count(g) <= 2)
            {
                building.remove(&tenant);
            }
        }
        Ok(built?)
    }
}

/// Builds a tenant's bot configuration from the database (with the rules' sentence vectors
/// when the semantic stage is on).
pub async fn load_config(
    pool: &PgPool,
    tenant: TenantId,
    encoder: Option<Arc<dyn SentenceEncoder>>,
    builds: &Arc<tokio::sync::Semaphore>,
    encoding: &Arc<Encoding>,
) -> Result<BotConfig, DbError> {
    let settings = config::get_settings(pool, tenant).await?;
    let menu_rows = config::list_menus(pool, tenant).await?;
    let buttons = config::list_buttons(pool, tenant).await?;
    let rule_rows = rules::list_enabled(pool, tenant).await?;
    let command_rows = config::list_commands(pool, tenant).await?;

    let of_menu =
        |id| -> Vec<&ButtonRow> { buttons.iter().filter(|b| b.menu_id == Some(id)).collect() };
    let of_rule = |id| -> Vec<&ButtonRow> {
        buttons
            .iter()
            .filter(|b| b.owner_rule_id == Some(id))
            .collect()
    };
    let menus = menu_rows
        .iter()
        .map(|m| {
            (
                m.id,
                Menu {
                    id: m.id,
                    text: m.text.clone(),
                    rows: rows_of(&of_menu(m.id)),
                    translations: m.translations.clone(),
                },
            )
        })
        .collect();
    let specs: Vec<RuleSpec> = rule_rows
        .iter()
        .map(|r| RuleSpec {
            id: r.id,
            title: r.title.clone(),
            examples: r.examples.clone(),
            keywords: r.keywords.clone(),
            required: r.required.clone(),
            patterns: r.patterns.clone(),
            priority: r.priority,
        })
        .collect();
    let mut featured: Vec<&switchboard_db::rules::RuleRow> =
        rule_rows.iter().filter(|r| r.featured).collect();
    featured.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.title.cmp(&b.title))
    });
    let featured: Vec<RuleId> = featured.into_iter().map(|r| r.id).collect();
    let mut popular = featured.clone();
    for id in rules::most_asked(pool, tenant, 10).await? {
        if popular.len() >= 5 {
            break;
        }
        if !popular.contains(&id) && rule_rows.iter().any(|r| r.id == id) {
            popular.push(id);
        }
    }
    let rules = rule_rows
        .iter()
        .map(|r| {
            let question = rule_question(r);
            let questions = Rule::questions(&r.examples, &r.translations, settings.lang());
            (
                r.id,
                Rule {
                    id: r.id,
                    title: r.title.clone(),
                    question,
                    answer: r.answer.clone(),
                    html: r.format == "html",
                    rows: rows_of(&of_rule(r.id)),
                    translations: r.translations.clone(),
                    questions,
                },
            )
        })
        .collect();
    let commands = command_rows
        .into_iter()
        .filter(|c| c.enabled)
        .map(|c| {
            (
                c.command.clone(),
                Command {
                    name: c.command,
                    description: c.description,
                    response: c.response,
                    translations: c.translations,
                },
            )
        })
        .collect();
    let default_lang = settings.lang();
    let translations = Lang::ALL
        .into_iter()
        .filter(|l| *l != default_lang)
        .map(|l| (l, settings.texts_in(l)))
        .collect();
    Ok(BotConfig {
        texts: settings.texts(),
        translations,
        hours: settings.hours(),
        zone: switchboard_core::hours::parse_zone(&settings.timezone).unwrap_or(chrono_tz::Tz::UTC),
        answer_threshold: settings.answer_threshold,
        suggest_threshold: settings.suggest_threshold,
        featured,
        popular,
        feedback: settings.feedback_enabled,
        main_menu: menu_rows.iter().find(|m| m.is_main).map(|m| m.id),
        menus,
        rules,
        commands,
        matcher: Arc::new(
            matcher_index(
                pool,
                tenant,
                specs,
                settings.synonyms.clone(),
                encoder,
                builds,
                encoding,
            )
            .await,
        ),
    })
}

/// The matcher index; with an encoder, each rule's examples (its title when it has none)
/// get sentence vectors: those stored for this tenant and model (`db::vectors`) are read,
/// only the others are encoded (off the async threads) and stored — so a restart, another
/// process or a rebuild after a change encodes only texts never seen before. More than
/// [`BACKGROUND_TEXTS`] new texts are encoded in the background, the index meanwhile
/// using the vectors it has (a rule with none gets its first text's, encoded at once).
/// Vectors of texts no rule uses any more are deleted.
async fn matcher_index(
    pool: &PgPool,
    tenant: TenantId,
    specs: Vec<RuleSpec>,
    synonyms: Vec<String>,
    encoder: Option<Arc<dyn SentenceEncoder>>,
    builds: &Arc<tokio::sync::Semaphore>,
    encoding: &Arc<Encoding>,
) -> MatcherIndex {
    let permit = builds.clone().acquire_owned().await;
    let (index, specs) = match tokio::task::spawn_blocking(move || {
        let _permit = permit;
        (MatcherIndex::build_with(&specs, &synonyms), specs)
    })
    .await
    {
        Ok(built) => built,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let Some(encoder) = encoder else {
        return index;
    };
    let texts: Vec<Vec<String>> = specs
        .iter()
        .map(|s| {
            if s.examples.is_empty() {
                vec![s.title.clone()]
            } else {
                s.examples.clone()
            }
        })
        .collect();
    let started = std::time::Instant::now();
    let calibration = encoder.calibration();
    let model = encoder.name().to_string();
    let mut unique: Vec<&String> = texts.iter().flatten().collect();
    unique.sort();
    unique.dedup();
    let hashes: Vec<Vec<u8>> = unique
        .iter()
        .map(|t| stored_vectors::text_hash(t))
        .collect();
    let mut known: HashMap<Vec<u8>, Vec<f32>> = match stored_vectors::get(
        pool, tenant, &model, &hashes,
    )
    .await
    {
        Ok(rows) => rows.into_iter().collect(),
        Err(e) => {
            tracing::warn!(%tenant, error = %e, "stored sentence vectors unreadable; encoding all");
            HashMap::new()
        }
    };
    let missing: Vec<(Vec<u8>, String)> = unique
        .iter()
        .zip(&hashes)
        .filter(|(_, h)| !known.contains_key(*h))
        .map(|(t, h)| (h.clone(), (*t).clone()))
        .collect();
    let stored = known.len();
    let mut complete = true;
    if missing.len() > BACKGROUND_TEXTS {
        // Many new texts (a big tenant's first index, an import): encoded and stored in
        // the background; the index is built again when they are stored
        // (`Caches::config`). Meanwhile the bot answers with what is known: every stored
        // vector, and for a rule with none yet its first text, encoded now — so rules
        // that had vectors keep being matched by meaning. With more such rules than the
        // limit (a first index), it matches lexically meanwhile.
        let hash_of: HashMap<&String, &Vec<u8>> = unique.iter().copied().zip(&hashes).collect();
        let mut uncovered: Vec<(Vec<u8>, String)> = texts
            .iter()
            .filter(|ts| ts.iter().all(|t| !known.contains_key(hash_of[t])))
            .filter_map(|ts| ts.first())
            .map(|t| (hash_of[t].clone(), t.clone()))
            .collect();
        uncovered.sort();
        uncovered.dedup();
        let now = if uncovered.len() > BACKGROUND_TEXTS {
            Vec::new()
        } else {
            uncovered
        };
        let later: Vec<(Vec<u8>, String)> =
            missing.into_iter().filter(|m| !now.contains(m)).collect();
        if let Some(done) = encoding.start(tenant) {
            let (pool, builds, model, encoder) =
                (pool.clone(), builds.clone(), model.clone(), encoder.clone());
            let count = later.len();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let permit = builds.acquire_owned().await;
                encode_and_store(&pool, tenant, &model, encoder, later).await;
                drop(permit);
                tracing::info!(%tenant, texts = count, ms = started.elapsed().as_millis() as u64,
                    "rules encoded in the background");
                done.store(true, Ordering::SeqCst);
            });
        }
        if now.is_empty() && known.is_empty() {
            return index;
        }
        if !now.is_empty() {
            let Some(fresh) = encode_and_store(pool, tenant, &model, encoder, now).await else {
                return index;
            };
            known.extend(fresh);
        }
        complete = false;
    } else if !missing.is_empty() {
        let Some(fresh) = encode_and_store(pool, tenant, &model, encoder, missing).await else {
            return index;
        };
        known.extend(fresh);
    }
    if complete {
        if let Err(e) = stored_vectors::keep_only(pool, tenant, &model, &hashes).await {
            tracing::warn!(%tenant, error = %e, "could not drop unused sentence vectors");
        }
    }
    // By text, each hashed once above.
    let by_text: HashMap<&String, Vec<f32>> = unique
        .iter()
        .zip(&hashes)
        .filter_map(|(t, h)| Some((*t, known.remove(h)?)))
        .collect();
    let vectors: Vec<Vec<Vec<f32>>> = texts
        .iter()
        .map(|ts| {
            ts.iter()
                .map(|t| by_text.get(t).cloned().unwrap_or_default())
                .collect()
        })
        .collect();
    tracing::debug!(
        %tenant,
        rules = specs.len(),
        texts = hashes.len(),
        stored,
        ms = started.elapsed().as_millis() as u64,
        "rules' sentence vectors ready"
    );
    index.with_semantics(&vectors, calibration)
}

/// Encodes `missing` (hash, text) off the async threads and stores the vectors; returns
/// them (`None` if encoding failed: the caller matches lexically).
async fn encode_and_store(
    pool: &PgPool,
    tenant: TenantId,
    model: &str,
    encoder: Arc<dyn SentenceEncoder>,
    missing: Vec<(Vec<u8>, String)>,
) -> Option<Vec<(Vec<u8>, Vec<f32>)>> {
    let texts: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
    let encoded = tokio::task::spawn_blocking(move || {
        encoder.encode(&texts.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await;
    let Ok(encoded) = encoded else {
        tracing::error!(%tenant, "encoding the rules failed; matching lexically");
        return None;
    };
    let fresh: Vec<(Vec<u8>, Vec<f32>)> = missing
        .into_iter()
        .zip(encoded)
        .filter(|(_, v)| !v.is_empty())
        .map(|((h, _), v)| (h, v))
        .collect();
    if let Err(e) = stored_vectors::put(pool, tenant, model, &fresh).await {
        tracing::warn!(%tenant, error = %e, "could not store sentence vectors");
    }
    Some(fresh)
}

/// Listens for configuration changes made by any process and drops the affected cache
/// entries. Runs until the pool closes; on a lost connection everything is dropped, since
/// notifications may have been missed.
pub async fn listen_for_invalidations(pool: PgPool, caches: Arc<Caches>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "cache invalidation listener cannot connect; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CONFIG_CHANNEL).await {
            tracing::warn!(error = %e, "cannot LISTEN for cache invalidations; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        // Anything cached before we were listening may be stale.
        caches.invalidate_all();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match n.payload().parse::<uuid::Uuid>() {
                    Ok(t) => caches.invalidate(TenantId(t)),
                    Err(_) => caches.invalidate_all(),
                },
                Ok(None) => {
                    tracing::info!("cache invalidation listener reconnected");
                    caches.invalidate_all();
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "cache invalidation listener failed; reconnecting");
                    caches.invalidate_all();
                    break;
                }
            }
        }
    }
}

/// How a rule is offered to users: the admins' question, else its first example (a
/// user's own words), else its title; at most 64 characters (a button's label).
fn rule_question(r: &switchboard_db::rules::RuleRow) -> String {
    let text = r
        .question
        .as_deref()
        .filter(|q| !q.trim().is_empty())
        .or_else(|| {
            r.examples
                .iter()
                .map(String::as_str)
                .find(|e| !e.trim().is_empty())
        })
        .unwrap_or(&r.title);
    switchboard_core::bot::question_label(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An encoder that takes a while, like a real one on a busy machine.
    struct Slow;

    impl SentenceEncoder for Slow {
        fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
            std::thread::sleep(Duration::from_millis(150));
            texts.iter().map(|_| vec![1.0, 0.0]).collect()
        }
        fn name(&self) -> &str {
            "slow"
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenants_flood_does_not_take_the_encoder_from_another() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:9/none")
            .unwrap();
        let vault = Vault::new(&switchboard_core::vault::MasterKey::generate(), &[]);
        let caches = Arc::new(Caches::new(pool, Arc::new(vault), 16));
        caches.set_encoder(Arc::new(Slow));
        let (noisy, quiet) = (TenantId::new(), TenantId::new());
        let flood: Vec<_> = (0..20)
            .map(|i| {
                let caches = caches.clone();
                tokio::spawn(
                    async move { caches.encode_message(noisy, &format!("flood {i}")).await },
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Behind 18 queued messages of the flood this would wait ~1.5 s and give up
        // (ENCODE_WAIT); with the flood holding at most a place per core, it waits for one
        // encoding.
        assert!(
            matches!(
                caches.encode_message(quiet, "quiet").await,
                Encoded::Vector(..)
            ),
            "the quiet tenant's message lost the semantic stage to another tenant's flood"
        );
        let mut encoded = 0;
        for f in flood {
            if matches!(f.await.unwrap(), Encoded::Vector(..)) {
                encoded += 1;
            }
        }
        assert_eq!(encoded, cores().min(20), "the flood's messages encoded");
        assert!(
            caches.encode_turns.lock().is_empty(),
            "every place in the queue was given back"
        );
    }
}
