//! Test support, for ferrossl's own tests and benchmarks: an in-process, seeded simulation of
//! two engines over links that lose, duplicate, delay and reorder datagrams, on a fake clock.
//! Nothing here sleeps or reads the system clock, so a run is reproducible from its seed.

use std::time::{Duration, Instant};

use super::error::DtlsError;
use super::DtlsEngine;

/// A small deterministic generator (SplitMix64): reproducible runs without a dependency.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A duration in `[0, max]`.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos() as u64;
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            self.next_u64() % (nanos + 1)
        })
    }
}

/// What a link does to datagrams.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConditions {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to `reorder_delay`, so later ones
    /// overtake it.
    pub reorder: f64,
    /// The one-way delay of every datagram.
    pub delay: Duration,
    /// The longest extra delay of a reordered datagram.
    pub reorder_delay: Duration,
    /// Datagrams longer than this are lost (a path MTU smaller than the engines think).
    pub path_mtu: Option<usize>,
}

impl LinkConditions {
    /// No loss, no duplication, no reordering, 10 ms delay.
    pub fn perfect() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::from_millis(10),
            reorder_delay: Duration::ZERO,
            path_mtu: None,
        }
    }

    /// `loss` loss, with 5% duplication and 20% reordering by up to 300 ms.
    pub fn lossy(loss: f64) -> Self {
        Self {
            loss,
            duplicate: 0.05,
            reorder: 0.2,
            delay: Duration::from_millis(10),
            reorder_delay: Duration::from_millis(300),
            path_mtu: None,
        }
    }
}

/// What a link did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams handed to the link.
    pub sent: u64,
    /// Datagrams it lost.
    pub lost: u64,
    /// Extra copies it made.
    pub duplicated: u64,
    /// Datagrams it held back.
    pub reordered: u64,
}

struct InFlight {
    arrival: Instant,
    order: u64,
    tag: u64,
    datagram: Vec<u8>,
}

/// One direction of a simulated network path.
pub struct Link {
    conditions: LinkConditions,
    rng: SimRng,
    queue: Vec<InFlight>,
    order: u64,
    stats: LinkStats,
}

impl Link {
    /// A link with these conditions, seeded.
    pub fn new(conditions: LinkConditions, seed: u64) -> Self {
        Self {
            conditions,
            rng: SimRng::new(seed),
            queue: Vec::new(),
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// Puts a datagram on the link at `now`; `tag` follows it to the other end.
    pub fn send(&mut self, datagram: Vec<u8>, tag: u64, now: Instant) {
        self.stats.sent += 1;
        let too_big = self.conditions.path_mtu.is_some_and(|m| datagram.len() > m);
        if self.rng.chance(self.conditions.loss) || too_big {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.conditions.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.conditions.delay;
            if self.rng.chance(self.conditions.reorder) {
                self.stats.reordered += 1;
                delay += self.rng.up_to(self.conditions.reorder_delay);
            }
            self.order += 1;
            self.queue.push(InFlight {
                arrival: now + delay,
                order: self.order,
                tag,
                datagram: datagram.clone(),
            });
        }
    }

    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.iter().map(|d| d.arrival).min()
    }

    /// Every datagram that has arrived by `now`, in arrival order, with its tag.
    pub fn receive(&mut self, now: Instant) -> Vec<(u64, Vec<u8>)> {
        let mut arrived: Vec<InFlight> = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].arrival <= now {
                arrived.push(self.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        arrived.sort_by_key(|d| (d.arrival, d.order));
        arrived.into_iter().map(|d| (d.tag, d.datagram)).collect()
    }

    /// What the link did so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }
}

/// One end of a [`Simulation`].
pub struct Endpoint {
    /// The engine.
    pub engine: DtlsEngine,
    /// The link from this end to the other.
    pub link: Link,
    /// Application data this end received, in order.
    pub received: Vec<Vec<u8>>,
    /// Tags of the datagrams the link delivered to the other end (copies included).
    pub delivered_tags: Vec<u64>,
    /// The error that ended this end, if any.
    pub error: Option<DtlsError>,
}

/// Two engines, two links and a fake clock.
pub struct Simulation {
    /// The client end.
    pub client: Endpoint,
    /// The server end.
    pub server: Endpoint,
    /// The simulated time.
    pub now: Instant,
}

/// The tag of handshake and alert datagrams; application datagrams get the caller's.
pub const HANDSHAKE_TAG: u64 = 0;

impl Simulation {
    /// Connects `client` and `server` (a fresh client has its ClientHello queued) over links
    /// with `conditions`, starting at `now`.
    pub fn new(
        client: DtlsEngine,
        server: DtlsEngine,
        conditions: LinkConditions,
        seed: u64,
        now: Instant,
    ) -> Self {
        let end = |engine, seed| Endpoint {
            engine,
            link: Link::new(conditions, seed),
            received: Vec::new(),
            delivered_tags: Vec::new(),
            error: None,
        };
        Self {
            client: end(client, seed),
            server: end(server, seed ^ 0x5EED_5EED_5EED_5EED),
            now,
        }
    }

    fn pump(end: &mut Endpoint, now: Instant) {
        while let Some(d) = end.engine.poll_datagram() {
            end.link.send(d, HANDSHAKE_TAG, now);
        }
    }

    fn deliver(from: &mut Endpoint, to: &mut Endpoint, now: Instant) {
        for (tag, datagram) in from.link.receive(now) {
            if tag != HANDSHAKE_TAG {
                from.delivered_tags.push(tag);
            }
            if let Err(e) = to.engine.handle_datagram(&datagram, now) {
                to.error.get_or_insert(e);
            }
        }
    }

    /// Advances the clock to the next event (an arrival or a timer), handles everything due
    /// then, and returns whether anything was pending at all.
    pub fn step(&mut self) -> bool {
        Self::pump(&mut self.client, self.now);
        Self::pump(&mut self.server, self.now);
        let next = [
            self.client.engine.next_timeout(),
            self.server.engine.next_timeout(),
            self.client.link.next_arrival(),
            self.server.link.next_arrival(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        Self::deliver(&mut self.client, &mut self.server, now);
        Self::deliver(&mut self.server, &mut self.client, now);
        for end in [&mut self.client, &mut self.server] {
            if end.engine.next_timeout().is_some_and(|t| t <= now) {
                if let Err(e) = end.engine.handle_timeout(now) {
                    end.error.get_or_insert(e);
                }
            }
            while let Some(data) = end.engine.recv() {
                end.received.push(data);
            }
        }
        true
    }

    /// Steps until `done` holds, an end fails, or `limit` of simulated time passes.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<(), String> {
        let deadline = self.now + limit;
        while !done(self) {
            if let Some(e) = self.client.error.as_ref().or(self.server.error.as_ref()) {
                return Err(format!("an end failed: {e}"));
            }
            if self.now > deadline || !self.step() {
                return Err(format!("not done after {limit:?} of simulated time"));
            }
        }
        Ok(())
    }

    /// Steps until nothing is in flight and no timer is armed, or `limit` passes.
    pub fn settle(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = self.now + limit;
        while self.step() {
            if self.now > deadline {
                return Err(format!("still busy after {limit:?} of simulated time"));
            }
        }
        Ok(())
    }

    /// Runs until both handshakes finished.
    pub fn handshake(&mut self, limit: Duration) -> Result<(), String> {
        self.run_until(limit, |s| {
            s.client.engine.is_established() && s.server.engine.is_established()
        })
    }

    /// Sends `data` from the client (or the server) as one application datagram tagged
    /// `tag` (non-zero), so the test can tell which datagrams the link delivered.
    pub fn send_application(
        &mut self,
        from_client: bool,
        data: &[u8],
        tag: u64,
    ) -> crate::Result<()> {
        assert_ne!(tag, HANDSHAKE_TAG, "tag 0 marks handshake traffic");
        let now = self.now;
        let end = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        Self::pump(end, now);
        end.engine.send(data)?;
        while let Some(d) = end.engine.poll_datagram() {
            end.link.send(d, tag, now);
        }
        Ok(())
    }
}
