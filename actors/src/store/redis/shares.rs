//! Share links in Redis: each link as JSON under `share:{token}`, expiring an hour after
//! the link does (`PXAT`), and the order's links in the hash `order_shares:{order}`
//! (link id → token), kept two days after its last write (links live at most a day, so
//! the hash outlives every link it lists). Written through the writer, not retained
//! through an outage: a link is handed out, or its revocation answered, only once Redis
//! has it.

use super::records::decode;
use super::{unavailable, RedisStore};
use crate::domain::share::ShareLink;
use crate::domain::OrderId;
use crate::store::shares::KEEP_AFTER_EXPIRY_MS;
use crate::store::StoreError;

const ORDER_LIST_TTL_MS: u64 = 2 * 86_400_000;

impl RedisStore {
    pub(super) async fn put_share_link(&self, link: &ShareLink) -> Result<(), StoreError> {
        let data = serde_json::to_string(link).map_err(unavailable)?;
        let token = link.token.expose();
        let mut set = redis::cmd("SET");
        set.arg(self.key(&format!("share:{token}")))
            .arg(data)
            .arg("PXAT")
            .arg(link.expires_ms.saturating_add(KEEP_AFTER_EXPIRY_MS));
        let list = self.key(&format!("order_shares:{}", link.order_id));
        let mut add = redis::cmd("HSET");
        add.arg(&list).arg(link.link_id.as_str()).arg(token);
        let mut keep = redis::cmd("PEXPIRE");
        keep.arg(&list).arg(ORDER_LIST_TTL_MS);
        self.submit("share", vec![set, add, keep], false, None)
            .await
            .map(|_| ())
    }

    pub(super) async fn get_share_link(
        &self,
        token: &str,
    ) -> Result<Option<ShareLink>, StoreError> {
        let mut c = redis::cmd("GET");
        c.arg(self.key(&format!("share:{token}")));
        let s: Option<String> = self.read(c).await?;
        Ok(s.and_then(|s| decode("share link", &s)))
    }

    pub(super) async fn list_share_links(
        &self,
        order: &OrderId,
    ) -> Result<Vec<ShareLink>, StoreError> {
        let mut c = redis::cmd("HVALS");
        c.arg(self.key(&format!("order_shares:{order}")));
        let tokens: Vec<String> = self.read(c).await?;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut get = redis::cmd("MGET");
        for t in &tokens {
            get.arg(self.key(&format!("share:{t}")));
        }
        let found: Vec<Option<String>> = self.read(get).await?;
        let mut links: Vec<ShareLink> = found
            .iter()
            .flatten()
            .filter_map(|s| decode::<ShareLink>("share link", s))
            .collect();
        links.sort_by_key(|l| l.created_ms);
        Ok(links)
    }
}
