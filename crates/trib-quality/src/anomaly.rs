//! Is a value out of line with its own history? A robust z-score: the distance from the
//! median of the trailing window in units of the median absolute deviation (scaled by
//! 1.4826 to match a standard deviation for normal data), so that one past outlier does
//! not widen the band the way it would widen a standard deviation.

/// Past measurements needed before a value is judged.
pub const MIN_HISTORY: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Learning { have: usize, need: usize },
    Normal { z: f64, median: f64 },
    Anomaly { z: f64, median: f64 },
}

/// Judges `x` against `past` (newest first or in any order).
pub fn judge(x: f64, past: &[f64], threshold: f64) -> Verdict {
    let past: Vec<f64> = past.iter().copied().filter(|v| v.is_finite()).collect();
    if past.len() < MIN_HISTORY {
        return Verdict::Learning {
            have: past.len(),
            need: MIN_HISTORY,
        };
    }
    let m = median(&past);
    let deviations: Vec<f64> = past.iter().map(|v| (v - m).abs()).collect();
    let mad = median(&deviations) * 1.4826;
    // A perfectly steady history has no spread: allow 1% of its level (or a tiny
    // absolute amount around zero) before calling a change an anomaly.
    let scale = if mad > 0.0 { mad } else { (m.abs() * 0.01).max(1e-9) };
    let z = (x - m).abs() / scale;
    if z > threshold {
        Verdict::Anomaly { z, median: m }
    } else {
        Verdict::Normal { z, median: m }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_noise_is_normal_and_a_spike_is_not() {
        let past = [1000.0, 1032.0, 987.0, 1011.0, 968.0, 1050.0, 995.0, 1003.0];
        assert!(matches!(judge(1040.0, &past, 3.5), Verdict::Normal { .. }));
        assert!(matches!(judge(960.0, &past, 3.5), Verdict::Normal { .. }));
        assert!(matches!(judge(2600.0, &past, 3.5), Verdict::Anomaly { .. }));
        assert!(matches!(judge(120.0, &past, 3.5), Verdict::Anomaly { .. }));
    }

    #[test]
    fn one_past_outlier_does_not_hide_the_next() {
        let past = [0.01, 0.012, 0.9, 0.011, 0.009, 0.01];
        assert!(matches!(judge(0.6, &past, 3.5), Verdict::Anomaly { .. }));
    }

    #[test]
    fn short_history_is_learning() {
        assert_eq!(
            judge(5.0, &[1.0, 2.0], 3.5),
            Verdict::Learning { have: 2, need: MIN_HISTORY }
        );
    }

    #[test]
    fn steady_history_tolerates_one_percent() {
        let past = [100.0; 6];
        assert!(matches!(judge(100.5, &past, 3.5), Verdict::Normal { .. }));
        assert!(matches!(judge(110.0, &past, 3.5), Verdict::Anomaly { .. }));
    }
}
