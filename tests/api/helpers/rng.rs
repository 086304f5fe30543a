//! A small seeded generator (splitmix64), for tests whose choices a printed seed replays;
//! enough for a schedule, without a new dependency.

pub struct Rng(pub u64);

impl Rng {
    /// A generator of its own for each part of a run (a user, a session, a task).
    pub fn of(seed: u64, parts: &[u64]) -> Self {
        let mut rng = Rng(seed);
        for part in parts {
            rng.0 ^= rng.next().wrapping_add(*part);
        }
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low)
    }

    pub fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len() as u64) as usize].clone())
    }
}
