//! Authentication and roles. Tokens are 256-bit random strings looked up in a registry
//! (not signed): revocation is a delete, and a token carries nothing a client could read.
//! Each token has an expiry (`auth.token_ttl_s` after it was issued), kept beside it in
//! memory and in the store. Customer passwords are stored only as argon2 hashes, computed
//! on the bounded hashing pool (src/password.rs).

use crate::errors::ApiError;
use crate::password::{HashError, PasswordPool};
use actix_web::{web, HttpRequest};
use dispatch_actors::domain::{CustomerId, MerchantId, RiderId};
use dispatch_actors::metric_names;
use dispatch_actors::store::{AccountRecord, Store};
use parking_lot::RwLock;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Expired tokens are swept from memory once per this many issued.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Dispatcher,
    Merchant(MerchantId),
    Rider(RiderId),
    Customer(CustomerId),
}

impl Principal {
    /// A stable string naming the caller (idempotency scope, logs).
    pub fn scope(&self) -> String {
        match self {
            Principal::Dispatcher => "dispatcher".into(),
            Principal::Merchant(m) => m.to_string(),
            Principal::Rider(r) => r.to_string(),
            Principal::Customer(c) => c.to_string(),
        }
    }

    /// How a token's owner is stored (`rider:r_…`); the dispatcher's token is config.
    pub fn encode(&self) -> String {
        match self {
            Principal::Dispatcher => "dispatcher".into(),
            Principal::Merchant(m) => format!("merchant:{m}"),
            Principal::Rider(r) => format!("rider:{r}"),
            Principal::Customer(c) => format!("customer:{c}"),
        }
    }

    /// A stored owner: `rider:r_…`, optionally followed by `@<expires_ms>` (tokens
    /// stored before expiry existed have none).
    pub fn decode_grant(s: &str) -> Option<(Principal, Option<u64>)> {
        match s.split_once('@') {
            Some((who, exp)) => Some((Principal::decode(who)?, Some(exp.parse().ok()?))),
            None => Some((Principal::decode(s)?, None)),
        }
    }

    pub fn decode(s: &str) -> Option<Principal> {
        let (kind, id) = s.split_once(':')?;
        match kind {
            "merchant" => MerchantId::parse(id).ok().map(Principal::Merchant),
            "rider" => RiderId::parse(id).ok().map(Principal::Rider),
            "customer" => CustomerId::parse(id).ok().map(Principal::Customer),
            _ => None,
        }
    }
}

struct Account {
    customer_id: CustomerId,
    password_hash: String,
}

/// Who a token names and until when (Unix ms).
#[derive(Debug, Clone)]
struct Grant {
    who: Principal,
    expires_ms: u64,
}

impl Grant {
    fn encode(&self) -> String {
        format!("{}@{}", self.who.encode(), self.expires_ms)
    }
}

/// A caller as its token names it, and when that token expires (None: the dispatcher's
/// configured token, which does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub who: Principal,
    pub expires_ms: Option<u64>,
}

pub struct AuthRegistry {
    dispatcher_token: String,
    tokens: RwLock<HashMap<String, Grant>>,
    accounts: RwLock<HashMap<String, Account>>,
    /// Where tokens and accounts are kept so they survive a restart (None: memory only).
    store: Option<Arc<dyn Store>>,
    ttl: Duration,
    hasher: PasswordPool,
    issued: AtomicU64,
    /// Bumped by every revocation handled here, so a token read from the store while
    /// one ran is read again before it is kept.
    revocations: AtomicU64,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The pool's refusals as the API answers them.
fn hash_error(e: HashError) -> ApiError {
    match e {
        HashError::Busy => ApiError::Busy { retry_after_s: 1 },
        other => ApiError::internal(other.to_string()),
    }
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuthRegistry {
    /// Tokens live `ttl`; passwords are hashed on `hasher`.
    pub fn new(dispatcher_token: String, ttl: Duration, hasher: PasswordPool) -> Self {
        Self {
            dispatcher_token,
            tokens: RwLock::new(HashMap::new()),
            accounts: RwLock::new(HashMap::new()),
            store: None,
            ttl,
            hasher,
            issued: AtomicU64::new(0),
            revocations: AtomicU64::new(0),
        }
    }

    fn expiry_from(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.ttl.as_millis().min(u64::MAX as u128) as u64)
    }

    /// Tokens and accounts are written to `store` before they are handed out.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Recovery: tokens and accounts as stored. Returns (tokens, accounts) restored.
    /// Expired tokens are left out; a token stored without an expiry (before tokens had
    /// one) gets a full lifetime from now.
    pub fn restore(
        &self,
        tokens: Vec<(String, String)>,
        accounts: Vec<AccountRecord>,
    ) -> (usize, usize) {
        let now = now_ms();
        let mut t = self.tokens.write();
        t.reserve(tokens.len());
        let mut n_tokens = 0;
        for (token, stored) in tokens {
            if let Some((who, expires)) = Principal::decode_grant(&stored) {
                let expires_ms = expires.unwrap_or_else(|| self.expiry_from(now));
                if expires_ms > now {
                    t.insert(token, Grant { who, expires_ms });
                    n_tokens += 1;
                }
            }
        }
        let mut a = self.accounts.write();
        let mut n_accounts = 0;
        for acc in accounts {
            if let Ok(customer_id) = CustomerId::parse(&acc.customer_id) {
                a.insert(
                    acc.username,
                    Account {
                        customer_id,
                        password_hash: acc.password_hash,
                    },
                );
                n_accounts += 1;
            }
        }
        (n_tokens, n_accounts)
    }

    /// Issues a token and stores it before returning it; a store failure issues nothing.
    pub async fn issue_durable(&self, who: Principal) -> Result<String, ApiError> {
        let token = self.issue(who);
        self.commit_issued(&token).await?;
        Ok(token)
    }

    /// Stores a token issued by [`AuthRegistry::issue`].
    async fn commit_issued(&self, token: &str) -> Result<(), ApiError> {
        let encoded = match self.tokens.read().get(token) {
            Some(g) => g.encode(),
            None => return Err(ApiError::internal("token vanished")),
        };
        self.commit_token(token, &encoded).await
    }

    async fn commit_token(&self, token: &str, encoded: &str) -> Result<(), ApiError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if let Err(e) = store.save_token(token, encoded).await {
            self.tokens.write().remove(token);
            return Err(e.into());
        }
        Ok(())
    }

    /// After [`AuthRegistry::register`]: stores the account (refused if another node took
    /// the username meanwhile) and its token; on failure both are forgotten.
    pub async fn commit_registration(&self, username: &str, token: &str) -> Result<(), ApiError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let record = {
            let accounts = self.accounts.read();
            let Some(a) = accounts.get(username) else {
                return Err(ApiError::internal("account vanished"));
            };
            AccountRecord {
                username: username.to_string(),
                customer_id: a.customer_id.to_string(),
                password_hash: a.password_hash.clone(),
            }
        };
        let forget = || {
            self.accounts.write().remove(username);
            self.tokens.write().remove(token);
        };
        match store.save_account(&record).await {
            Ok(true) => {}
            Ok(false) => {
                forget();
                return Err(ApiError::UsernameTaken);
            }
            Err(e) => {
                forget();
                return Err(e.into());
            }
        }
        if let Err(e) = self.commit_issued(token).await {
            self.accounts.write().remove(username);
            return Err(e);
        }
        Ok(())
    }

    /// After [`AuthRegistry::login`]: stores the new token.
    pub async fn commit_login(&self, token: &str) -> Result<(), ApiError> {
        self.commit_issued(token).await
    }

    pub fn issue(&self, who: Principal) -> String {
        let token = new_token();
        let now = now_ms();
        let grant = Grant {
            who,
            expires_ms: self.expiry_from(now),
        };
        let mut tokens = self.tokens.write();
        tokens.insert(token.clone(), grant);
        // Tokens nobody uses again are never looked up: sweep the expired now and then,
        // so the map holds live tokens only.
        if self.issued.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            tokens.retain(|_, g| g.expires_ms > now);
        }
        token
    }

    pub fn lookup(&self, token: &str) -> Option<Principal> {
        self.lookup_grant(token).map(|a| a.who)
    }

    /// The token's holder and its expiry; an expired token is forgotten and names nobody.
    pub fn lookup_grant(&self, token: &str) -> Option<Authenticated> {
        if !self.dispatcher_token.is_empty() && constant_time_eq(token, &self.dispatcher_token) {
            return Some(Authenticated {
                who: Principal::Dispatcher,
                expires_ms: None,
            });
        }
        let now = now_ms();
        match self.tokens.read().get(token) {
            None => return None,
            Some(g) if g.expires_ms > now => {
                return Some(Authenticated {
                    who: g.who.clone(),
                    expires_ms: Some(g.expires_ms),
                })
            }
            Some(_) => {}
        }
        if self.tokens.write().remove(token).is_some() {
            metrics::counter!(metric_names::TOKENS_ENDED_TOTAL, "why" => "expired").increment(1);
        }
        None
    }

    /// Like [`AuthRegistry::lookup_grant`], and a token this node does not hold is read
    /// from the store: another node sharing it may have issued it (docs/cluster.md,
    /// "Tokens"). `Unavailable` when the store cannot say (503, not a false 401).
    pub async fn resolve_grant(&self, token: &str) -> Result<Option<Authenticated>, ApiError> {
        if let Some(a) = self.lookup_grant(token) {
            return Ok(Some(a));
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        // A revocation handled while the read was in flight may have removed the token
        // from the store after the read saw it: read again rather than cache it.
        for _ in 0..3 {
            let seen = self.revocations.load(Ordering::SeqCst);
            let Some(stored) = store.load_token(token).await? else {
                return Ok(None);
            };
            let Some((who, expires)) = Principal::decode_grant(&stored) else {
                return Ok(None);
            };
            let now = now_ms();
            let expires_ms = expires.unwrap_or_else(|| self.expiry_from(now));
            if expires_ms <= now {
                return Ok(None);
            }
            let mut tokens = self.tokens.write();
            if self.revocations.load(Ordering::SeqCst) != seen {
                continue;
            }
            tokens.insert(
                token.to_string(),
                Grant {
                    who: who.clone(),
                    expires_ms,
                },
            );
            metrics::counter!(metric_names::TOKENS_READ_THROUGH_TOTAL).increment(1);
            return Ok(Some(Authenticated {
                who,
                expires_ms: Some(expires_ms),
            }));
        }
        Ok(None)
    }

    /// Forgets every token of `who` this node holds (a revocation made on any node).
    /// Returns how many.
    pub fn forget_holder(&self, who: &Principal) -> usize {
        let mut tokens = self.tokens.write();
        self.revocations.fetch_add(1, Ordering::SeqCst);
        let before = tokens.len();
        tokens.retain(|_, g| &g.who != who);
        before - tokens.len()
    }

    /// Ends every token of `rider`: deleted from the store first (a restart must not bring
    /// them back), then from memory. Returns how many there were. A store failure ends
    /// none. Closing the rider's socket is the caller's part.
    pub async fn revoke_rider(&self, rider: &RiderId) -> Result<usize, ApiError> {
        let who = Principal::Rider(rider.clone());
        let mut tokens: Vec<String> = self
            .tokens
            .read()
            .iter()
            .filter(|(_, g)| g.who == who)
            .map(|(t, _)| t.clone())
            .collect();
        if let Some(store) = &self.store {
            // Tokens other nodes issued are listed in the store, not here.
            let holder = who.encode();
            for t in store.tokens_of(&holder).await? {
                if !tokens.contains(&t) {
                    tokens.push(t);
                }
            }
            store.revoke_tokens(&holder, &tokens).await?;
        }
        self.forget_holder(&who);
        metrics::counter!(metric_names::TOKENS_ENDED_TOTAL, "why" => "revoked")
            .increment(tokens.len() as u64);
        Ok(tokens.len())
    }

    /// Registers a customer. The argon2 hash is computed on the hashing pool, before
    /// taking the lock.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(CustomerId, String), ApiError> {
        if self.accounts.read().contains_key(username) {
            return Err(ApiError::UsernameTaken);
        }
        let hash = self
            .hasher
            .hash(password.to_string())
            .await
            .map_err(hash_error)?;
        let customer_id = CustomerId::generate();
        {
            let mut accounts = self.accounts.write();
            if accounts.contains_key(username) {
                return Err(ApiError::UsernameTaken);
            }
            accounts.insert(
                username.to_string(),
                Account {
                    customer_id: customer_id.clone(),
                    password_hash: hash,
                },
            );
        }
        let token = self.issue(Principal::Customer(customer_id.clone()));
        Ok((customer_id, token))
    }

    /// An account registered on another node sharing the store, now kept here too.
    async fn stored_account(
        &self,
        username: &str,
    ) -> Result<Option<(CustomerId, String)>, ApiError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let Some(rec) = store.load_account(username).await? else {
            return Ok(None);
        };
        let Ok(customer_id) = CustomerId::parse(&rec.customer_id) else {
            return Ok(None);
        };
        self.accounts.write().insert(
            rec.username,
            Account {
                customer_id: customer_id.clone(),
                password_hash: rec.password_hash.clone(),
            },
        );
        Ok(Some((customer_id, rec.password_hash)))
    }

    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(CustomerId, String), ApiError> {
        let wrong = || ApiError::Unauthorized("wrong username or password".into());
        let known = self
            .accounts
            .read()
            .get(username)
            .map(|a| (a.customer_id.clone(), a.password_hash.clone()));
        let (customer_id, hash) = match known {
            Some(k) => k,
            None => match self.stored_account(username).await? {
                Some(k) => k,
                None => return Err(wrong()),
            },
        };
        let ok = self
            .hasher
            .verify(password.to_string(), hash)
            .await
            .map_err(hash_error)?;
        if !ok {
            return Err(wrong());
        }
        let token = self.issue(Principal::Customer(customer_id.clone()));
        Ok((customer_id, token))
    }
}

/// The token of a request: `Authorization: Bearer …`, or `?token=` when `allow_query`.
pub fn request_token(req: &HttpRequest, allow_query: bool) -> Option<String> {
    bearer(req).or_else(|| if allow_query { query_token(req) } else { None })
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let t = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))?;
    Some(t.trim().to_string())
}

fn query_token(req: &HttpRequest) -> Option<String> {
    let q = web::Query::<HashMap<String, String>>::from_query(req.query_string()).ok()?;
    q.get("token").filter(|t| !t.is_empty()).cloned()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::password::PoolConfig;
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};

    fn registry(ttl: Duration) -> AuthRegistry {
        AuthRegistry::new("disp".into(), ttl, PasswordPool::new(PoolConfig::default()))
    }

    #[tokio::test]
    async fn register_login_and_lookup() {
        let reg = registry(Duration::from_secs(60));
        let (cid, token) = reg.register("ann", "secret-pass").await.unwrap();
        assert_eq!(reg.lookup(&token), Some(Principal::Customer(cid.clone())));
        assert!(matches!(
            reg.register("ann", "x").await,
            Err(ApiError::UsernameTaken)
        ));
        assert!(matches!(
            reg.login("ann", "wrong").await,
            Err(ApiError::Unauthorized(_))
        ));
        let (cid2, _) = reg.login("ann", "secret-pass").await.unwrap();
        assert_eq!(cid, cid2);
        assert_eq!(reg.lookup("disp"), Some(Principal::Dispatcher));
        assert_eq!(reg.lookup("nope"), None);
        let stored = &reg.accounts.read()["ann"].password_hash;
        assert!(stored.starts_with("$argon2") && !stored.contains("secret-pass"));
    }

    #[tokio::test]
    async fn an_account_stored_before_the_pool_still_logs_in() {
        let reg = registry(Duration::from_secs(60));
        let salt = SaltString::generate(&mut OsRng);
        let old = argon2::Argon2::default()
            .hash_password(b"old-pass", &salt)
            .unwrap()
            .to_string();
        let cid = CustomerId::generate();
        let record = AccountRecord {
            username: "old".into(),
            customer_id: cid.to_string(),
            password_hash: old,
        };
        assert_eq!(reg.restore(Vec::new(), vec![record]), (0, 1));
        assert_eq!(reg.login("old", "old-pass").await.unwrap().0, cid);
        assert!(reg.login("old", "new-pass").await.is_err());
    }

    #[test]
    fn tokens_expire_and_stored_ones_keep_their_expiry() {
        let reg = registry(Duration::from_millis(1));
        let rider = RiderId::generate();
        let t = reg.issue(Principal::Rider(rider.clone()));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(reg.lookup(&t), None, "expired");
        assert!(reg.tokens.read().is_empty(), "and forgotten");
        let reg = registry(Duration::from_secs(60));
        let now = now_ms();
        let stored = vec![
            (
                "live".to_string(),
                format!("rider:{rider}@{}", now + 60_000),
            ),
            ("gone".to_string(), format!("rider:{rider}@{}", now - 1)),
            ("legacy".to_string(), format!("rider:{rider}")),
            ("junk".to_string(), "rider:r_x@soon".to_string()),
        ];
        assert_eq!(reg.restore(stored, Vec::new()), (2, 0));
        let live = reg.lookup_grant("live").unwrap();
        assert_eq!(live.who, Principal::Rider(rider.clone()));
        assert_eq!(live.expires_ms, Some(now + 60_000));
        assert!(reg.lookup("gone").is_none());
        let legacy = reg.lookup_grant("legacy").unwrap().expires_ms.unwrap();
        assert!(
            legacy >= now + 59_000,
            "a legacy token gets a lifetime from now"
        );
        assert_eq!(
            reg.lookup_grant("disp").unwrap(),
            Authenticated {
                who: Principal::Dispatcher,
                expires_ms: None
            }
        );
    }

    #[tokio::test]
    async fn revoking_a_rider_ends_only_its_tokens() {
        let reg = registry(Duration::from_secs(60));
        let (a, b) = (RiderId::generate(), RiderId::generate());
        let a1 = reg.issue(Principal::Rider(a.clone()));
        let a2 = reg.issue(Principal::Rider(a.clone()));
        let b1 = reg.issue(Principal::Rider(b.clone()));
        assert_eq!(reg.revoke_rider(&a).await.unwrap(), 2);
        assert_eq!(reg.lookup(&a1), None);
        assert_eq!(reg.lookup(&a2), None);
        assert_eq!(reg.lookup(&b1), Some(Principal::Rider(b)));
        assert_eq!(reg.revoke_rider(&a).await.unwrap(), 0);
    }
}
