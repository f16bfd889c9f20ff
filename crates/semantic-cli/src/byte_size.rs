//! Human byte sizes for flags: `2GiB`, `512MiB`, `1.5G`, `1000000`.

use std::fmt;
use std::str::FromStr;

/// A size in bytes parsed from a human-friendly string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{s:?} is not a size (examples: 2GiB, 512MiB, 1000000)"))?;
        let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "t" | "tb" => 1e12,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            "tib" => 1024.0f64.powi(4),
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {s:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
                ))
            }
        };
        let bytes = value * factor;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("{s:?} is out of range"));
        }
        Ok(Self(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{}B", self.0)
        } else {
            write!(f, "{value:.1}{}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!("2GiB".parse(), Ok(ByteSize(2 << 30)));
        assert_eq!("512 MiB".parse(), Ok(ByteSize(512 << 20)));
        assert_eq!("1.5G".parse(), Ok(ByteSize(1_500_000_000)));
        assert_eq!("1000".parse(), Ok(ByteSize(1000)));
        assert!("lots"
            .parse::<ByteSize>()
            .unwrap_err()
            .contains("not a size"));
        assert!("3XB"
            .parse::<ByteSize>()
            .unwrap_err()
            .contains("unknown size unit"));
    }

    #[test]
    fn displays_human_readable() {
        assert_eq!(ByteSize(2 << 30).to_string(), "2.0GiB");
        assert_eq!(ByteSize(12).to_string(), "12B");
    }
}
