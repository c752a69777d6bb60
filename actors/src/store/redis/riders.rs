//! One rider read back by id: a node taking a rider whose actor is nowhere (its node
//! died, or the rider has not connected since a restart) rebuilds it from this.

use super::positions::parse_position;
use super::{unavailable, RedisStore};
use crate::domain::rider::RiderView;
use crate::domain::RiderId;
use crate::store::{RiderRecord, StoreError};

impl RedisStore {
    pub(super) async fn write_rider_node(
        &self,
        id: &RiderId,
        node: &str,
    ) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(&format!("rider_node:{id}"))).arg(node);
        self.submit("rider", vec![set], false, None)
            .await
            .map(|_| ())
    }

    pub(super) async fn read_rider_node(&self, id: &RiderId) -> Result<Option<String>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.key(&format!("rider_node:{id}")));
        self.read(get).await
    }

    pub(super) async fn read_rider(&self, id: &RiderId) -> Result<Option<RiderRecord>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.key(&format!("rider:{id}")));
        let Some(record) = self.read::<Option<String>>(get).await? else {
            return Ok(None);
        };
        let view: RiderView =
            serde_json::from_str(&record).map_err(|e| unavailable(format!("decode: {e}")))?;
        let mut pos = redis::cmd("HGET");
        pos.arg(self.key("positions")).arg(id.as_str());
        let at: Option<String> = self.read(pos).await?;
        Ok(Some((view, at.as_deref().and_then(parse_position))))
    }
}
