//! Position updates for the ingest bench: a random rider moves `MOVE_M` on a random
//! heading from where its last update left it. The positions are tracked so the index can
//! be checked against a scan of where every rider ended up.

use dispatch_actors::domain::{GeoPoint, RiderId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One fix every 10 s at 5 m/s.
pub const MOVE_M: f64 = 50.0;

pub struct Moves {
    rng: StdRng,
    positions: Vec<GeoPoint>,
}

impl Moves {
    pub fn new(riders: &[(RiderId, GeoPoint, bool)], seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            positions: riders.iter().map(|(_, at, _)| *at).collect(),
        }
    }

    /// The next update: which rider (its index in the riders' list), and where it is now.
    pub fn next(&mut self) -> (usize, GeoPoint) {
        let i = self.rng.gen_range(0..self.positions.len());
        let to = self.positions[i].destination(self.rng.gen_range(0.0..360.0), MOVE_M);
        self.positions[i] = to;
        (i, to)
    }

    /// Where every rider is after the updates drawn so far.
    pub fn positions(&self) -> &[GeoPoint] {
        &self.positions
    }
}
