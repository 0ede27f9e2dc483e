//! Byte sizes as people write them, one rule for every flag and configuration field.
//!
//! A size is bytes, or a number (a decimal fraction allowed) with a unit: `K`/`KiB`, `M`/`MiB`,
//! `G`/`GiB`, `T`/`TiB` are powers of 1024, `KB`, `MB`, `GB`, `TB` powers of 1000; case and
//! spaces do not matter. At most [`MAX_SIZE`]; a fraction of a byte is dropped.

/// The largest size taken: 2^60 bytes (1 EiB).
pub const MAX_SIZE: u64 = 1 << 60;

/// A size that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The number is missing or malformed.
    #[error("bad size {0:?} (expected like 500MiB or 50GB)")]
    Number(String),
    /// The unit is not one of the known ones.
    #[error("unknown size unit {unit:?} in {text:?} (use K, M, G, T, KiB.., KB..)")]
    Unit {
        /// The size as given.
        text: String,
        /// The unit as given.
        unit: String,
    },
    /// The size is larger than [`MAX_SIZE`].
    #[error("{0:?} is more than the limit of 2^60 bytes (1 EiB)")]
    TooLarge(String),
}

/// Parses a size (see the module docs): `4096`, `64k`, `64MiB`, `1.5KiB`, `50 GB`.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = unit_scale(text, unit.trim())?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let bad = || SizeError::Number(text.to_owned());
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad());
    }
    let too_large = || SizeError::TooLarge(text.to_owned());
    let whole: u64 = match whole {
        "" => 0,
        w => w.parse().map_err(|_| too_large())?,
    };
    let bytes = whole
        .checked_mul(scale)
        .ok_or_else(too_large)?
        .checked_add(fraction_of(frac, scale).ok_or_else(bad)?)
        .filter(|&b| b <= MAX_SIZE)
        .ok_or_else(too_large)?;
    Ok(bytes)
}

/// Bytes per unit.
fn unit_scale(text: &str, unit: &str) -> Result<u64, SizeError> {
    Ok(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(SizeError::Unit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            })
        }
    })
}

/// `0.<digits>` times `scale`, in whole bytes (digits past the 18th are dropped).
fn fraction_of(digits: &str, scale: u64) -> Option<u64> {
    let digits = &digits[..digits.len().min(18)];
    if digits.is_empty() {
        return Some(0);
    }
    let numerator: u128 = digits.parse().ok()?;
    let denominator = 10u128.pow(digits.len() as u32);
    u64::try_from(numerator * u128::from(scale) / denominator).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("50GiB"), Ok(50 << 30));
        assert_eq!(parse_size("50 g"), Ok(50 << 30));
        assert_eq!(parse_size("2TB"), Ok(2_000_000_000_000));
        assert_eq!(parse_size("64kb"), Ok(64_000));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("0.5"), Ok(0));
        assert_eq!(parse_size(".5k"), Ok(512));
        assert_eq!(parse_size("1.1GB"), Ok(1_100_000_000));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [
            "",
            "GiB",
            ".",
            "1.2.3",
            "5 parsecs",
            "12 parsecs",
            "-1",
            "1e3",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_size("99999999999999999999T"),
            Err(SizeError::TooLarge(_))
        ));
        assert!(matches!(parse_size("2EiB"), Err(SizeError::Unit { .. })));
        assert_eq!(parse_size("1048576TiB"), Ok(MAX_SIZE));
        assert!(parse_size("1048577TiB").is_err());
    }
}
