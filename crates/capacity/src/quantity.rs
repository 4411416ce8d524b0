//! Kubernetes resource quantities: CPU in millicores, memory in bytes.

const KI: u128 = 1024;
const MI: u64 = 1024 * 1024;
const GI: u64 = 1024 * MI;

/// CPU millicores of `500m`, `2`, `1.5`; fractions of a millicore round up, as Kubernetes does.
pub fn parse_cpu(text: &str) -> Option<u64> {
    let (number, scale) = match text.strip_suffix('m') {
        Some(number) => (number, 1),
        None => (text, 1000),
    };
    scaled(number, scale)
}

/// Bytes of `512Mi`, `2Gi`, `1G`, `100M`, `1.5Gi` or a plain byte count; fractions round up.
pub fn parse_memory(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let factor: u128 = match suffix {
        "" => 1,
        "k" => 1000,
        "M" => 1000u128.pow(2),
        "G" => 1000u128.pow(3),
        "T" => 1000u128.pow(4),
        "P" => 1000u128.pow(5),
        "Ki" => KI,
        "Mi" => KI.pow(2),
        "Gi" => KI.pow(3),
        "Ti" => KI.pow(4),
        "Pi" => KI.pow(5),
        _ => return None,
    };
    scaled(number, factor)
}

/// `number × factor`, where `number` is decimal digits with an optional fraction; rounded up.
fn scaled(number: &str, factor: u128) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let denominator = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let numerator: u128 = format!("{whole}{fraction}").parse().ok()?;
    let value = numerator.checked_mul(factor)?.div_ceil(denominator);
    u64::try_from(value).ok()
}

/// `1500m`.
pub fn format_cpu(millicores: u64) -> String {
    format!("{millicores}m")
}

/// `2Gi`, `512Mi`, or a byte count when neither divides it.
pub fn format_memory(bytes: u64) -> String {
    if bytes != 0 && bytes.is_multiple_of(GI) {
        format!("{}Gi", bytes / GI)
    } else if bytes.is_multiple_of(MI) {
        format!("{}Mi", bytes / MI)
    } else if bytes.is_multiple_of(1024) {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu("500m"), Some(500));
        assert_eq!(parse_cpu("1.5"), Some(1500));
        assert_eq!(parse_cpu("2"), Some(2000));
        assert_eq!(parse_cpu("0.1"), Some(100));
        assert_eq!(parse_cpu("0.0005"), Some(1));
        assert_eq!(parse_cpu(".5"), Some(500));
        for bad in ["", "m", "1.2.3", "-1", "2 ", "1e3", "abc", "1Gi"] {
            assert_eq!(parse_cpu(bad), None, "{bad}");
        }
    }

    #[test]
    fn memory_quantities() {
        assert_eq!(parse_memory("2Gi"), Some(2 * GI));
        assert_eq!(parse_memory("512Mi"), Some(512 * MI));
        assert_eq!(parse_memory("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory("100M"), Some(100_000_000));
        assert_eq!(parse_memory("1.5Gi"), Some(1536 * MI));
        assert_eq!(parse_memory("64Ki"), Some(65536));
        assert_eq!(parse_memory("1048576"), Some(MI));
        for bad in ["", "Gi", "2GB", "1.5.1Mi", "-1Gi", "2gi", "1e3"] {
            assert_eq!(parse_memory(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatted_quantities_parse_back() {
        for bytes in [0, 1_000_000_000, 512 * MI, 3 * GI, 1536 * MI] {
            assert_eq!(parse_memory(&format_memory(bytes)), Some(bytes));
        }
        assert_eq!(format_memory(3 * GI), "3Gi");
        assert_eq!(format_memory(1536 * MI), "1536Mi");
        assert_eq!(format_memory(49 * 1024), "49Ki");
        assert_eq!(format_memory(1000), "1000");
        assert_eq!(parse_cpu(&format_cpu(1250)), Some(1250));
    }
}
