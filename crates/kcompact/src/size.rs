//! Memory sizes as people write them: `24G`, `512M`, `1T`, `4096K`, `1073741824`.

use thiserror::Error;

/// Why a size did not parse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SizeError {
    /// Empty text.
    #[error("empty size")]
    Empty,
    /// Not a number followed by an optional unit.
    #[error("'{0}' is not a size: write a number with an optional unit K, M, G or T (powers of 1024), e.g. 4G")]
    Syntax(String),
    /// Too large for 64 bits.
    #[error("'{0}' is too large")]
    Overflow(String),
}

/// Parses a size in bytes: decimal digits with an optional unit `K`, `M`, `G`, `T`
/// (binary multiples; a trailing `B` or `iB` is accepted: `4GiB`, `4GB`).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits_end == 0 {
        return Err(SizeError::Syntax(text.to_string()));
    }
    let n: u64 = t[..digits_end]
        .parse()
        .map_err(|_| SizeError::Overflow(text.to_string()))?;
    let unit = t[digits_end..].to_ascii_uppercase();
    let shift = match unit.as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(SizeError::Syntax(text.to_string())),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow(text.to_string()))
}

/// Writes a size the way [`parse_size`] reads it, in the largest unit that divides it
/// (`2G`, `1536M`, `0`).
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_format_in_the_largest_unit_and_read_back() {
        for b in [0, 1, 4096, 3 << 29, 2 << 30, 1 << 40, (1 << 40) + 4096] {
            assert_eq!(parse_size(&format_size(b)), Ok(b), "{b}");
        }
        assert_eq!(format_size(3 << 29), "1536M");
        assert_eq!(format_size(2 << 30), "2G");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("24G"), Ok(24 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert!(matches!(parse_size("3X"), Err(SizeError::Syntax(_))));
        assert!(matches!(parse_size("G"), Err(SizeError::Syntax(_))));
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(
            parse_size("20000000T"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(parse_size("-1G"), Err(SizeError::Syntax(_))));
    }
}
