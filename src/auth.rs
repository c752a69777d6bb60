//! Authentication and roles. Tokens are 256-bit random strings looked up in a registry
//! (not signed): revocation is a delete, and a token carries nothing a client could read.
//! Customer passwords are stored only as argon2 hashes.

use crate::errors::ApiError;
use actix_web::{web, HttpRequest};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use dispatch_actors::domain::{CustomerId, MerchantId, RiderId};
use dispatch_actors::store::{AccountRecord, Store};
use parking_lot::RwLock;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Arc;

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

pub struct AuthRegistry {
    dispatcher_token: String,
    tokens: RwLock<HashMap<String, Principal>>,
    accounts: RwLock<HashMap<String, Account>>,
    /// Where tokens and accounts are kept so they survive a restart (None: memory only).
    store: Option<Arc<dyn Store>>,
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuthRegistry {
    pub fn new(dispatcher_token: String) -> Self {
        Self {
            dispatcher_token,
            tokens: RwLock::new(HashMap::new()),
            accounts: RwLock::new(HashMap::new()),
            store: None,
        }
    }

    /// Tokens and accounts are written to `store` before they are handed out.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Recovery: tokens and accounts as stored. Returns (tokens, accounts) restored.
    pub fn restore(
        &self,
        tokens: Vec<(String, String)>,
        accounts: Vec<AccountRecord>,
    ) -> (usize, usize) {
        let mut t = self.tokens.write();
        t.reserve(tokens.len());
        let mut n_tokens = 0;
        for (token, who) in tokens {
            if let Some(p) = Principal::decode(&who) {
                t.insert(token, p);
                n_tokens += 1;
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
        let encoded = who.encode();
        let token = self.issue(who);
        self.commit_token(&token, &encoded).await?;
        Ok(token)
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
        let encoded = format!("customer:{}", record.customer_id);
        if let Err(e) = self.commit_token(token, &encoded).await {
            self.accounts.write().remove(username);
            return Err(e);
        }
        Ok(())
    }

    /// After [`AuthRegistry::login`]: stores the new token.
    pub async fn commit_login(&self, token: &str) -> Result<(), ApiError> {
        let encoded = match self.tokens.read().get(token) {
            Some(p) => p.encode(),
            None => return Err(ApiError::internal("token vanished")),
        };
        self.commit_token(token, &encoded).await
    }

    pub fn issue(&self, who: Principal) -> String {
        let token = new_token();
        self.tokens.write().insert(token.clone(), who);
        token
    }

    pub fn lookup(&self, token: &str) -> Option<Principal> {
        if !self.dispatcher_token.is_empty() && constant_time_eq(token, &self.dispatcher_token) {
            return Some(Principal::Dispatcher);
        }
        self.tokens.read().get(token).cloned()
    }

    /// The caller named by `Authorization: Bearer …` (or `?token=` when `allow_query`).
    pub fn authenticate(
        &self,
        req: &HttpRequest,
        allow_query: bool,
    ) -> Result<Principal, ApiError> {
        let token = bearer(req).or_else(|| if allow_query { query_token(req) } else { None });
        let token = token.ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        self.lookup(&token)
            .ok_or_else(|| ApiError::Unauthorized("invalid token".into()))
    }

    /// Registers a customer. The argon2 hash is computed before taking the lock.
    pub fn register(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(CustomerId, String), ApiError> {
        if self.accounts.read().contains_key(username) {
            return Err(ApiError::UsernameTaken);
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))?
            .to_string();
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

    pub fn login(&self, username: &str, password: &str) -> Result<(CustomerId, String), ApiError> {
        let (customer_id, hash) = {
            let accounts = self.accounts.read();
            match accounts.get(username) {
                Some(a) => (a.customer_id.clone(), a.password_hash.clone()),
                None => return Err(ApiError::Unauthorized("wrong username or password".into())),
            }
        };
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::internal(format!("stored hash unreadable: {e}")))?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|_| ApiError::Unauthorized("wrong username or password".into()))?;
        let token = self.issue(Principal::Customer(customer_id.clone()));
        Ok((customer_id, token))
    }
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

    #[test]
    fn register_login_and_lookup() {
        let reg = AuthRegistry::new("disp".into());
        let (cid, token) = reg.register("ann", "secret-pass").unwrap();
        assert_eq!(reg.lookup(&token), Some(Principal::Customer(cid.clone())));
        assert!(matches!(
            reg.register("ann", "x"),
            Err(ApiError::UsernameTaken)
        ));
        assert!(reg.login("ann", "wrong").is_err());
        let (cid2, _) = reg.login("ann", "secret-pass").unwrap();
        assert_eq!(cid, cid2);
        assert_eq!(reg.lookup("disp"), Some(Principal::Dispatcher));
        assert_eq!(reg.lookup("nope"), None);
        let stored = &reg.accounts.read()["ann"].password_hash;
        assert!(stored.starts_with("$argon2") && !stored.contains("secret-pass"));
    }
}
