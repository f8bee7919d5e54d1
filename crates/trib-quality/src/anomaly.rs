//! Is a value out of line with its own history? A robust z-score: the distance from the
//! median of the trailing window in units of a robust spread, so that one past outlier
//! does not widen the band the way it would widen a standard deviation. The spread is
//! the larger of the median absolute deviation and the interquartile range, each scaled
//! to match a standard deviation for normal data: on short windows the MAD alone
//! collapses when a few values cluster, and would flag values the history has seen.

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
    let mad = (median(&deviations) * 1.4826).max((quantile(&past, 0.75) - quantile(&past, 0.25)) / 1.349);
    // When most of the history sits on one value the MAD is zero although the rest
    // varies: fall back to the mean absolute deviation (scaled to match a standard
    // deviation), and for a perfectly steady history allow 1% of its level (or a tiny
    // absolute amount around zero) before calling a change an anomaly.
    let mean_ad = deviations.iter().sum::<f64>() / deviations.len() as f64 * 1.2533;
    let scale = if mad > 0.0 {
        mad
    } else if mean_ad > 0.0 {
        mean_ad
    } else {
        (m.abs() * 0.01).max(1e-9)
    };
    let z = (x - m).abs() / scale;
    if z > threshold {
        Verdict::Anomaly { z, median: m }
    } else {
        Verdict::Normal { z, median: m }
    }
}

/// The `q` quantile with linear interpolation between order statistics.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
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
    fn a_history_mostly_on_one_value_keeps_its_spread() {
        let past = [0.1, 0.0917, 0.1111, 0.1, 0.1, 0.1, 0.0909];
        assert!(matches!(judge(0.108, &past, 3.5), Verdict::Normal { .. }));
        assert!(matches!(judge(0.5, &past, 3.5), Verdict::Anomaly { .. }));
    }

    #[test]
    fn short_history_is_learning() {
        assert_eq!(
            judge(5.0, &[1.0, 2.0], 3.5),
            Verdict::Learning {
                have: 2,
                need: MIN_HISTORY
            }
        );
    }

    #[test]
    fn steady_history_tolerates_one_percent() {
        let past = [100.0; 6];
        assert!(matches!(judge(100.5, &past, 3.5), Verdict::Normal { .. }));
        assert!(matches!(judge(110.0, &past, 3.5), Verdict::Anomaly { .. }));
    }
}
