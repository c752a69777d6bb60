//! Tokens shared by every node on one Redis (docs/cluster.md, "Tokens"): a node that did
//! not issue a token reads it here before refusing it; each holder's tokens are listed so
//! a revocation on any node finds them all; revocations are announced on a stream every
//! node polls, so each ends the holder's sockets and forgets its cached tokens.

use super::{unavailable, RedisStore};
use crate::store::{AccountRecord, StoreError};
use redis::{Cmd, Value};

/// Revocations kept in the stream (nodes poll it every fraction of a second).
const REVOCATIONS_MAXLEN: usize = 10_000;

/// The holder part of a stored grant (`rider:r_…@<expires_ms>` → `rider:r_…`).
pub(super) fn holder_of(encoded: &str) -> &str {
    encoded.split_once('@').map_or(encoded, |(who, _)| who)
}

impl RedisStore {
    fn token_index_key(&self, holder: &str) -> String {
        self.key(&format!("tokens_of:{holder}"))
    }

    /// The holder's token list: one more command beside the token's own `HSET`.
    pub(super) fn token_index_cmd(&self, token: &str, encoded: &str) -> Cmd {
        let mut c = redis::cmd("SADD");
        c.arg(self.token_index_key(holder_of(encoded))).arg(token);
        c
    }

    pub(super) async fn read_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let mut c = redis::cmd("HGET");
        c.arg(self.key("tokens")).arg(token);
        self.read(c).await
    }

    pub(super) async fn read_tokens_of(&self, holder: &str) -> Result<Vec<String>, StoreError> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.token_index_key(holder));
        self.read(c).await
    }

    pub(super) async fn read_account(
        &self,
        username: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let mut c = redis::cmd("HGET");
        c.arg(self.key("accounts")).arg(username);
        let stored: Option<String> = self.read(c).await?;
        stored
            .map(|s| serde_json::from_str(&s).map_err(|e| unavailable(format!("decode: {e}"))))
            .transpose()
    }

    /// Deletes `tokens` and `holder`'s list, and announces the revocation, in one write.
    pub(super) async fn write_revocation(
        &self,
        holder: &str,
        tokens: &[String],
    ) -> Result<(), StoreError> {
        let mut cmds = Vec::with_capacity(3);
        if !tokens.is_empty() {
            let mut del = redis::cmd("HDEL");
            del.arg(self.key("tokens")).arg(tokens);
            cmds.push(del);
        }
        let mut index = redis::cmd("DEL");
        index.arg(self.token_index_key(holder));
        cmds.push(index);
        let mut announce = redis::cmd("XADD");
        announce
            .arg(self.key("revocations"))
            .arg("MAXLEN")
            .arg("~")
            .arg(REVOCATIONS_MAXLEN)
            .arg("*")
            .arg("holder")
            .arg(holder);
        cmds.push(announce);
        self.submit("token", cmds, false, None).await.map(|_| ())
    }

    /// Revocations announced after the stream id `after` (empty: none yet, only the
    /// stream's latest id, to start from). Returns the id to poll from next and the
    /// holders revoked. Never blocks: the connection is shared with every other read.
    pub(super) async fn read_revocations(
        &self,
        after: &str,
    ) -> Result<(String, Vec<String>), StoreError> {
        let key = self.key("revocations");
        if after.is_empty() {
            let mut c = redis::cmd("XREVRANGE");
            c.arg(&key).arg("+").arg("-").arg("COUNT").arg(1);
            let last: Value = self.read(c).await?;
            let id = entries(&last)
                .into_iter()
                .next()
                .map_or_else(|| "0-0".to_string(), |(id, _)| id);
            return Ok((id, Vec::new()));
        }
        let mut c = redis::cmd("XRANGE");
        c.arg(&key)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(1000);
        let got: Value = self.read(c).await?;
        let list = entries(&got);
        let next = list
            .last()
            .map_or_else(|| after.to_string(), |(id, _)| id.clone());
        Ok((next, list.into_iter().filter_map(|(_, h)| h).collect()))
    }
}

/// `(id, holder)` of each stream entry in an `XRANGE` answer.
fn entries(v: &Value) -> Vec<(String, Option<String>)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = text(parts.first()?)?;
            let holder = match parts.get(1) {
                Some(Value::Array(fields)) => fields
                    .chunks(2)
                    .find(|kv| text(&kv[0]).as_deref() == Some("holder"))
                    .and_then(|kv| kv.get(1).and_then(text)),
                _ => None,
            };
            Some((id, holder))
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::holder_of;

    #[test]
    fn holder_is_the_grant_without_its_expiry() {
        assert_eq!(holder_of("rider:r_1@1700000000000"), "rider:r_1");
        assert_eq!(holder_of("customer:c_2"), "customer:c_2");
    }
}
