//! Realistic events for the example project's bronze products, with a share of bad
//! records of the kinds producers really send. Deterministic: the same seed gives the
//! same bytes, so demo runs and benchmarks compare like with like.

use std::fmt::Write;

/// A small, fast, seeded generator (PCG-style LCG); no dependency needed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) ^ (self.0 >> 17)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// Base time of generated events: 2026-03-15T00:00:00Z, in seconds.
const BASE: i64 = 1_773_532_800;

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// NDJSON order events (each order placed, then often paid and shipped).
pub fn orders(n: usize, bad_per_mille: u64, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let countries = ["DE", "FR", "NL", "ES", "IT", "US", "GB", "PL"];
    let currencies = ["EUR", "EUR", "EUR", "USD", "GBP"];
    let mut out = String::with_capacity(n * 260);
    let mut i = 0usize;
    while i < n {
        let order = i;
        let placed = BASE + rng.below(86_400) as i64;
        let customer = rng.below(5_000);
        let amount = format!("{}.{:02}", 5 + rng.below(500), rng.below(100));
        let country = rng.pick(&countries);
        let currency = rng.pick(&currencies);
        let steps: &[&str] = match rng.below(10) {
            0 => &["placed", "cancelled"],
            1..=3 => &["placed", "paid"],
            _ => &["placed", "paid", "shipped"],
        };
        for (k, status) in steps.iter().enumerate() {
            if i >= n {
                break;
            }
            let updated = placed + k as i64 * (600 + rng.below(3_600) as i64);
            let line = if rng.chance(bad_per_mille) {
                match rng.below(5) {
                    0 => format!(
                        "{{\"order_id\":\"o-{order}\",\"customer_id\":\"c-{customer}\",\"status\":\"{status}\",\"amount\":\"ten euros\",\"ordered_at\":\"{}\",\"updated_at\":\"{}\"}}",
                        iso(placed),
                        iso(updated)
                    ),
                    1 => format!(
                        "{{\"order_id\":\"o-{order}\",\"status\":\"{status}\",\"amount\":{amount},\"ordered_at\":\"{}\",\"updated_at\":\"{}\"}}",
                        iso(placed),
                        iso(updated)
                    ),
                    2 => format!(
                        "{{\"order_id\":\"o-{order}\",\"customer_id\":\"c-{customer}\",\"status\":\"{status}\",\"amount\":{amount},\"ordered_at\":\"last week\",\"updated_at\":\"{}\"}}",
                        iso(updated)
                    ),
                    3 => format!(
                        "{{\"order_id\":\"o-{order}\",\"customer_id\":\"c-{customer}\",\"status\":\"{status}\",\"amount\":{amount}5,\"ordered_at\":\"{}\",\"updated_at\":\"{}\"}}",
                        iso(placed),
                        iso(updated)
                    ),
                    _ => format!(
                        "{{\"order_id\":\"o-{order}\",\"customer_id\":\"c-{customer}\",\"status\":\"{status}\",\"amount\":{amount},"
                    ),
                }
            } else {
                format!(
                    "{{\"order_id\":\"o-{order}\",\"customer_id\":\"c-{customer}\",\"customer_email\":\"customer{customer}@example.com\",\"country\":\"{country}\",\"status\":\"{status}\",\"amount\":{amount},\"currency\":\"{currency}\",\"ordered_at\":\"{}\",\"updated_at\":\"{}\"}}",
                    iso(placed),
                    iso(updated)
                )
            };
            out.push_str(&line);
            out.push('\n');
            i += 1;
        }
    }
    out
}

/// NDJSON clickstream events of browsing sessions.
pub fn clicks(n: usize, bad_per_mille: u64, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let pages = ["/", "/search", "/p/1001", "/p/1002", "/p/2001", "/cart", "/checkout"];
    let types = [
        "page_view",
        "page_view",
        "page_view",
        "add_to_cart",
        "search",
        "checkout",
    ];
    let mut out = String::with_capacity(n * 300);
    for i in 0..n {
        let session = i / 12;
        // Sessions start every 3 s and last 3 minutes, so events interleave a little;
        // two in a thousand arrive half an hour late (behind the 10-minute watermark).
        let mut at = BASE + session as i64 * 3 + (i % 12) as i64 * 15;
        if rng.chance(2) {
            at -= 1_800;
        }
        let url = rng.pick(&pages);
        let kind = rng.pick(&types);
        let user = rng.below(20_000);
        let ip = format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.below(256));
        let mut line = String::new();
        if rng.chance(bad_per_mille) {
            match rng.below(3) {
                0 => write!(line, "{{\"event_id\":\"e-{i}\",\"session_id\":\"s-{session}\",\"url\":\"{url}\",\"occurred_at\":\"{}\"}}", iso(at)),
                1 => write!(line, "{{\"event_id\":\"e-{i}\",\"session_id\":\"s-{session}\",\"event_type\":\"{kind}\",\"url\":\"{url}\",\"occurred_at\":\"{}\",\"properties\":{{\"position\":\"top\"}}}}", iso(at)),
                _ => write!(line, "[\"e-{i}\",\"s-{session}\"]"),
            }
        } else {
            write!(
                line,
                "{{\"event_id\":\"e-{i}\",\"session_id\":\"s-{session}\",\"user_id\":\"u-{user}\",\"ip_address\":\"{ip}\",\"event_type\":\"{kind}\",\"url\":\"{url}\",\"referrer\":null,\"properties\":{{\"product_id\":\"{}\",\"position\":{}}},\"occurred_at\":\"{}\"}}",
                url.trim_start_matches("/p/"),
                rng.below(20),
                iso(at)
            )
        }
        .ok();
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// NDJSON readings of a fleet of sensors, every 10 seconds each.
pub fn readings(n: usize, bad_per_mille: u64, seed: u64) -> String {
    readings_from(n, bad_per_mille, seed, 0)
}

/// Readings as [`readings`], starting `offset` seconds later.
pub fn readings_from(n: usize, bad_per_mille: u64, seed: u64, offset: i64) -> String {
    let mut rng = Rng::new(seed);
    let devices = 50;
    let mut out = String::with_capacity(n * 160);
    for i in 0..n {
        let device = i % devices;
        let at = BASE + offset + (i / devices) as i64 * 10;
        let temp = 18.0 + (device as f64) * 0.1 + (rng.below(400) as f64) / 100.0;
        let hum = 30.0 + (rng.below(4000) as f64) / 100.0;
        let site = if device < 25 { "plant-north" } else { "plant-south" };
        let line = if rng.chance(bad_per_mille) {
            match rng.below(3) {
                0 => format!(
                    "{{\"device_id\":\"d-{device}\",\"site\":\"{site}\",\"reading_at\":\"soon\",\"temperature_c\":{temp:.2}}}"
                ),
                1 => format!(
                    "{{\"device_id\":\"d-{device}\",\"site\":\"{site}\",\"reading_at\":{at},\"temperature_c\":\"hot\"}}"
                ),
                _ => format!("{{\"site\":\"{site}\",\"reading_at\":{at}}}"),
            }
        } else {
            format!(
                "{{\"device_id\":\"d-{device}\",\"site\":\"{site}\",\"reading_at\":{at},\"temperature_c\":{temp:.2},\"humidity_pct\":{hum:.2},\"battery_v\":{:.2}}}",
                3.0 + (rng.below(100) as f64) / 100.0
            )
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        assert_eq!(orders(100, 20, 1), orders(100, 20, 1));
        assert_eq!(orders(100, 20, 1).lines().count(), 100);
        assert_eq!(clicks(50, 20, 1).lines().count(), 50);
        assert_eq!(readings(70, 20, 1).lines().count(), 70);
        assert_ne!(readings(70, 20, 1), readings(70, 20, 2));
    }
}
