//! Matching stage: CVSS base scores, so every finding's severity comes from the vector itself rather
//! than from whatever number a publisher may or may not have copied next to it.
//!
//! v3.0/v3.1: the FIRST v3.1 specification's base formula (section 7.1) with its `Roundup` (appendix A),
//! implemented here. v4.0: the `cvss` crate, which implements the v4.0 specification's macro-vector
//! lookup and interpolation (the FIRST calculator's algorithm).

/// A base score with the vector it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct CvssScore {
    pub vector: String,
    pub score: f64,
}

/// Why a vector could not be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CVSS vector {vector:?}: {reason}")]
pub struct CvssError {
    pub vector: String,
    pub reason: String,
}

fn error(vector: &str, reason: impl Into<String>) -> CvssError {
    CvssError {
        vector: vector.chars().take(200).collect(),
        reason: reason.into(),
    }
}

/// The v3.1 `Roundup`: the smallest number with one decimal that is >= the input, computed on integers
/// so that floating point noise (e.g. 4.000000000000001) does not round up a whole tenth.
pub fn roundup(value: f64) -> f64 {
    let int_input = (value * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

/// Scores a `CVSS:3.0/...` or `CVSS:3.1/...` vector's base metrics. Temporal and environmental metrics
/// may be present and are ignored (the base score is what advisories publish).
pub fn score_v3(vector: &str) -> Result<f64, CvssError> {
    let mut parts = vector.trim().split('/');
    match parts.next() {
        Some("CVSS:3.0") | Some("CVSS:3.1") => {}
        _ => return Err(error(vector, "does not start with CVSS:3.0/ or CVSS:3.1/")),
    }
    // AV, AC, PR, UI, S, C, I, A: each must appear exactly once.
    let mut values: [Option<char>; 8] = [None; 8];
    const NAMES: [&str; 8] = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
    for part in parts {
        let (name, value) = part
            .split_once(':')
            .ok_or_else(|| error(vector, format!("component {part:?} has no ':'")))?;
        let mut chars = value.chars();
        let (Some(value), None) = (chars.next(), chars.next()) else {
            return Err(error(
                vector,
                format!("component {part:?} has no single-letter value"),
            ));
        };
        if let Some(slot) = NAMES.iter().position(|n| *n == name) {
            if values[slot].replace(value).is_some() {
                return Err(error(vector, format!("metric {name} appears twice")));
            }
        }
    }
    let get = |slot: usize| {
        values[slot].ok_or_else(|| error(vector, format!("base metric {} missing", NAMES[slot])))
    };
    let bad = |slot: usize, value: char| {
        error(
            vector,
            format!("invalid value {value:?} for metric {}", NAMES[slot]),
        )
    };
    let scope_changed = match get(4)? {
        'U' => false,
        'C' => true,
        v => return Err(bad(4, v)),
    };
    let attack_vector = match get(0)? {
        'N' => 0.85,
        'A' => 0.62,
        'L' => 0.55,
        'P' => 0.2,
        v => return Err(bad(0, v)),
    };
    let attack_complexity = match get(1)? {
        'L' => 0.77,
        'H' => 0.44,
        v => return Err(bad(1, v)),
    };
    let privileges = match (get(2)?, scope_changed) {
        ('N', _) => 0.85,
        ('L', false) => 0.62,
        ('L', true) => 0.68,
        ('H', false) => 0.27,
        ('H', true) => 0.5,
        (v, _) => return Err(bad(2, v)),
    };
    let user_interaction = match get(3)? {
        'N' => 0.85,
        'R' => 0.62,
        v => return Err(bad(3, v)),
    };
    let impact_value = |slot: usize| -> Result<f64, CvssError> {
        match get(slot)? {
            'H' => Ok(0.56),
            'L' => Ok(0.22),
            'N' => Ok(0.0),
            v => Err(bad(slot, v)),
        }
    };
    let (c, i, a) = (impact_value(5)?, impact_value(6)?, impact_value(7)?);

    let iss = 1.0 - ((1.0 - c) * (1.0 - i) * (1.0 - a));
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * attack_vector * attack_complexity * privileges * user_interaction;
    if impact <= 0.0 {
        return Ok(0.0);
    }
    Ok(if scope_changed {
        roundup(f64::min(1.08 * (impact + exploitability), 10.0))
    } else {
        roundup(f64::min(impact + exploitability, 10.0))
    })
}

/// Scores a `CVSS:4.0/...` vector with the `cvss` crate.
pub fn score_v4(vector: &str) -> Result<f64, CvssError> {
    let trimmed = vector.trim();
    if !trimmed.starts_with("CVSS:4.0/") {
        return Err(error(vector, "does not start with CVSS:4.0/"));
    }
    let parsed: cvss::v4::Vector = trimmed
        .parse()
        .map_err(|e: cvss::Error| error(vector, e.to_string()))?;
    // The crate's scoring indexes a lookup table it expects to be complete for every parsed vector. A
    // gap there must not take the whole run down, so a panic becomes an ordinary "cannot score".
    let score = std::panic::catch_unwind(|| parsed.score().value())
        .map_err(|_| error(vector, "the CVSS v4 scorer rejected this vector"))?;
    Ok(score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundup_follows_the_spec_examples() {
        // CVSS v3.1 specification, appendix A.
        assert_eq!(roundup(4.000_000_000_000_01), 4.0);
        assert_eq!(roundup(4.02), 4.1);
        assert_eq!(roundup(4.0), 4.0);
    }

    #[test]
    fn v3_scores_match_published_ones() {
        // Scores as published by NVD / the FIRST calculator for these vectors.
        let cases = [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:H", 6.6),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N/E:P/RL:O", 6.4),
        ];
        for (vector, expected) in cases {
            assert_eq!(score_v3(vector).unwrap(), expected, "{vector}");
        }
    }

    #[test]
    fn v3_rejects_malformed_vectors() {
        for vector in [
            "",
            "CVSS:2.0/AV:N",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:NN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AVN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:é/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ] {
            assert!(score_v3(vector).is_err(), "{vector}");
        }
    }

    #[test]
    fn v4_scores_match_the_first_calculator() {
        // Base scores as the FIRST CVSS v4.0 calculator and NVD publish them for these vectors.
        let cases = [
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                10.0,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.5,
            ),
        ];
        for (vector, expected) in cases {
            assert_eq!(score_v4(vector).unwrap(), expected, "{vector}");
        }
        assert!(score_v4("CVSS:4.0/AV:N").is_err());
        assert!(score_v4("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").is_err());
    }
}
