//! How long a simulated generation takes: a model's typical time, spread the way real
//! services spread (most near typical, a few much slower), times the speed factor.

use std::time::Duration;

use crate::rng::SplitMix;

/// A generation time for a model whose typical time is `typical_secs`.
pub(crate) fn draw_duration(rng: &mut SplitMix, typical_secs: f64, speed: f64) -> Duration {
    if speed <= 0.0 || typical_secs <= 0.0 {
        // Still consume the draw so ids stay the same whatever the speed.
        let _ = rng.next_u64();
        let _ = rng.next_u64();
        return Duration::ZERO;
    }
    let body = rng.range_f64(0.7, 1.3);
    let tail = if rng.next_f64() < 0.08 {
        rng.range_f64(1.5, 2.5)
    } else {
        1.0
    };
    Duration::from_secs_f64((typical_secs * body * tail * speed).min(86_400.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_speed_is_instant_and_spread_is_bounded() {
        let mut rng = SplitMix::new(3);
        assert_eq!(draw_duration(&mut rng, 20.0, 0.0), Duration::ZERO);
        for _ in 0..1000 {
            let d = draw_duration(&mut rng, 20.0, 1.0).as_secs_f64();
            assert!((14.0..=65.0).contains(&d), "{d}");
        }
        let fast = draw_duration(&mut rng, 20.0, 0.01).as_secs_f64();
        assert!(fast < 0.7);
    }
}
