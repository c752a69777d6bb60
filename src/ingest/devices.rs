//! Which rider each tracking-app device reports for (docs/protocol.md, "Tracking apps").
//! Looked up on every fix, so kept in memory; written to the store before a device id is
//! handed out or a revocation is answered, and restored from it after a restart (like
//! tokens: a device registered on one server is seen by another after its restart).
//! Device ids are secrets (the OsmAnd protocol carries nothing else): this module never
//! logs them, and `DeviceId` has no `Display`.

use crate::errors::ApiError;
use dispatch_actors::domain::{DeviceId, RiderId};
use dispatch_actors::store::Store;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct DeviceRegistry {
    devices: RwLock<HashMap<DeviceId, RiderId>>,
    store: Arc<dyn Store>,
    /// False while a restart is still reading the stored devices: a device not found
    /// then may only not be back yet.
    complete: AtomicBool,
    /// Several nodes share the store: a device may have been registered, or revoked, on
    /// another node, so the store's list is asked on every fix (one `HGET`) rather than
    /// this node's (docs/cluster.md, "Tracking apps").
    read_through: bool,
}

impl DeviceRegistry {
    /// An empty registry over `store`; `complete`: nothing stored is still to be restored
    /// (else call [`DeviceRegistry::mark_complete`] once it is).
    pub fn new(store: Arc<dyn Store>, complete: bool) -> Self {
        Self {
            devices: RwLock::new(HashMap::new()),
            store,
            complete: AtomicBool::new(complete),
            read_through: false,
        }
    }

    /// A registry of a node of a cluster: every lookup asks the shared store.
    pub fn read_through(mut self) -> Self {
        self.read_through = true;
        self
    }

    /// The rider `device` reports for, wherever it was registered. `Err`: the store did
    /// not answer (a node of a cluster cannot tell a revoked device from a live one then).
    pub async fn lookup(&self, device: &str) -> Result<Option<RiderId>, ApiError> {
        if !self.read_through {
            return Ok(self.rider_of(device));
        }
        // Not the shape of any device id handed out: no store read for it.
        if DeviceId::parse(device).is_err() {
            return Ok(None);
        }
        Ok(self.store.load_device(device).await?)
    }

    /// Every stored device is restored.
    pub fn mark_complete(&self) {
        self.complete.store(true, Ordering::SeqCst);
    }

    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::SeqCst)
    }

    /// Recovery: device id → rider id as stored. Returns how many were restored (a record
    /// that does not parse is skipped).
    pub fn restore(&self, stored: Vec<(String, String)>) -> usize {
        let mut devices = self.devices.write();
        let before = devices.len();
        for (device, rider) in stored {
            if let (Ok(d), Ok(r)) = (DeviceId::parse(&device), RiderId::parse(&rider)) {
                devices.insert(d, r);
            }
        }
        devices.len() - before
    }

    /// A new device for `rider`, stored before it is returned: a store failure hands out
    /// nothing.
    pub async fn register(&self, rider: &RiderId) -> Result<DeviceId, ApiError> {
        let device = DeviceId::generate();
        self.store.save_device(&device, rider).await?;
        self.devices.write().insert(device.clone(), rider.clone());
        Ok(device)
    }

    /// Revokes `rider`'s device `device`: refused at once, and for good once the store has
    /// it (a store failure puts it back and answers 503). Another rider's device, or one
    /// that is unknown, is 404: the caller learns nothing about others' devices.
    pub async fn revoke(&self, rider: &RiderId, device: &str) -> Result<(), ApiError> {
        if self.read_through {
            // Registered on any node: the store's list says whose it is.
            let (Some(owner), Ok(id)) = (self.lookup(device).await?, DeviceId::parse(device))
            else {
                return Err(ApiError::not_found("no such device for this rider"));
            };
            if owner != *rider {
                return Err(ApiError::not_found("no such device for this rider"));
            }
            self.store.delete_device(&id).await?;
            self.devices.write().remove(device);
            return Ok(());
        }
        let removed = {
            let mut devices = self.devices.write();
            match devices.get_key_value(device) {
                Some((d, r)) if r == rider => {
                    let d = d.clone();
                    devices.remove(device);
                    d
                }
                _ => return Err(ApiError::not_found("no such device for this rider")),
            }
        };
        if let Err(e) = self.store.delete_device(&removed).await {
            self.devices.write().insert(removed, rider.clone());
            return Err(e.into());
        }
        Ok(())
    }

    /// The rider `device` reports for, if it is registered and not revoked.
    pub fn rider_of(&self, device: &str) -> Option<RiderId> {
        self.devices.read().get(device).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_actors::store::MemoryStore;

    fn rider(id: &str) -> RiderId {
        RiderId::parse(id).unwrap()
    }

    #[tokio::test]
    async fn a_registered_device_names_its_rider_until_revoked() {
        let store = Arc::new(MemoryStore::new());
        let reg = DeviceRegistry::new(store.clone(), true);
        let d = reg.register(&rider("r_a")).await.unwrap();
        assert_eq!(reg.rider_of(d.expose()), Some(rider("r_a")));
        assert_eq!(store.device_rider(d.expose()), Some(rider("r_a")), "stored");
        reg.revoke(&rider("r_a"), d.expose()).await.unwrap();
        assert_eq!(reg.rider_of(d.expose()), None);
        assert_eq!(store.device_rider(d.expose()), None, "revoked in the store");
    }

    #[tokio::test]
    async fn another_riders_device_is_not_found_and_stays() {
        let reg = DeviceRegistry::new(Arc::new(MemoryStore::new()), true);
        let d = reg.register(&rider("r_a")).await.unwrap();
        let err = reg.revoke(&rider("r_b"), d.expose()).await.unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert_eq!(reg.rider_of(d.expose()), Some(rider("r_a")));
        let err = reg.revoke(&rider("r_a"), "no-such-device-0123456789").await;
        assert_eq!(err.unwrap_err().code(), "not_found");
    }

    #[tokio::test]
    async fn a_read_through_registry_sees_devices_registered_and_revoked_elsewhere() {
        let store = Arc::new(MemoryStore::new());
        let here = DeviceRegistry::new(store.clone(), true);
        let there = DeviceRegistry::new(store.clone(), true).read_through();
        let d = here.register(&rider("r_a")).await.unwrap();
        assert_eq!(there.rider_of(d.expose()), None, "not in its own list");
        assert_eq!(there.lookup(d.expose()).await.unwrap(), Some(rider("r_a")));
        here.revoke(&rider("r_a"), d.expose()).await.unwrap();
        assert_eq!(there.lookup(d.expose()).await.unwrap(), None, "revoked");
        assert_eq!(there.lookup("not-a-device").await.unwrap(), None);
        // Revoked through the other registry, whichever registered it.
        let d = here.register(&rider("r_a")).await.unwrap();
        let err = there.revoke(&rider("r_b"), d.expose()).await.unwrap_err();
        assert_eq!(err.code(), "not_found", "another rider's device");
        there.revoke(&rider("r_a"), d.expose()).await.unwrap();
        assert_eq!(there.lookup(d.expose()).await.unwrap(), None);
        // A registry of one process keeps to its own list.
        let alone = DeviceRegistry::new(store.clone(), true);
        let d = here.register(&rider("r_a")).await.unwrap();
        assert_eq!(alone.lookup(d.expose()).await.unwrap(), None);
    }

    #[test]
    fn restore_keeps_what_parses() {
        let reg = DeviceRegistry::new(Arc::new(MemoryStore::new()), true);
        let good = DeviceId::generate();
        let n = reg.restore(vec![
            (good.expose().to_string(), "r_a".to_string()),
            ("short".to_string(), "r_a".to_string()),
            (
                DeviceId::generate().expose().to_string(),
                "o_notarider".to_string(),
            ),
        ]);
        assert_eq!(n, 1);
        assert_eq!(reg.rider_of(good.expose()), Some(rider("r_a")));
    }
}
