//! The Redis store against a real Redis at 127.0.0.1:6379 (a key prefix of its own per
//! test).

use super::*;
use crate::domain::order::tests::sample_order;

fn store(test: &str) -> RedisStore {
    let prefix = format!("test:{test}:{}:", rand::random::<u64>());
    RedisStore::open(RedisConfig {
        prefix,
        ..RedisConfig::default()
    })
    .expect("redis store")
}

/// Two changes of one order that leave `version` alone (an offer, then its expiry) are
/// captured in order but reach the writer the other way round, in one pipeline: the later
/// capture must survive.
#[tokio::test]
async fn of_two_racing_writes_of_one_order_the_later_capture_survives() {
    let s = store("seq");
    let mut earlier = OrderRecord::bare(sample_order());
    earlier.order.version = 3;
    earlier.seq = 7;
    earlier.radius_m = 3000.0;
    let mut later = earlier.clone();
    later.seq = 8;
    later.radius_m = 6000.0;
    // Both are queued before the writer runs, the later capture first: one pipeline.
    let (a, b) = tokio::join!(s.save_order_record(&later), s.save_order_record(&earlier));
    assert_eq!((a, b), (Ok(()), Ok(())), "a skipped write is not an error");
    let id = earlier.order.order_id.clone();
    let stored = s.load_order_record(&id).await.unwrap().unwrap();
    assert_eq!((stored.seq, stored.radius_m), (8, 6000.0));
    // A newer version always wins over an older one, whatever its sequence.
    let mut next = later.clone();
    next.order.version = 4;
    next.seq = 9;
    s.save_order_record(&next).await.unwrap();
    s.save_order_record(&later).await.unwrap();
    let stored = s.load_order_record(&id).await.unwrap().unwrap();
    assert_eq!((stored.order.version, stored.seq), (4, 9));
}
