//! Money is an integer count of minor units plus an ISO 4217 currency. Never
//! floats: every amount a buyer sees, pays or gets back is exact.

/// The canonical (upper-case) code if `code` names a currency a ticket can
/// be priced in: ISO 4217's circulating currencies, from the `iso_currency`
/// crate's table (kept current upstream: XCG replaced ANG in 2025, EUR
/// superseded BGN in 2026). Fund, metal and testing codes (CLF, XAU, XXX)
/// and superseded ones are left out: nobody starts selling tickets in them.
pub fn currency(code: &str) -> Option<&'static str> {
    let found = iso_currency::Currency::from_code(&code.trim().to_ascii_uppercase())?;
    let circulating = found.exponent().is_some()
        && !found.is_fund()
        && !found.is_special()
        && found.is_superseded().is_none();
    circulating.then(|| found.code())
}

/// Digits after the decimal point, e.g. 2 for EUR, 0 for JPY (of any ISO
/// 4217 code with minor units, superseded ones included: old orders stay
/// readable).
pub fn exponent(code: &str) -> Option<u8> {
    let found = iso_currency::Currency::from_code(code)?;
    u8::try_from(found.exponent()?).ok()
}

/// `amount` shown in major units with the currency, e.g. `EUR 12.50`.
pub fn format(amount_minor: i64, code: &str) -> String {
    let exp = exponent(code).unwrap_or(2) as u32;
    if exp == 0 {
        return format!("{code} {amount_minor}");
    }
    let unit = 10i64.pow(exp);
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    format!(
        "{code} {sign}{}.{:0width$}",
        abs / unit as u64,
        abs % unit as u64,
        width = exp as usize
    )
}

/// `basis_points` (1/100 of a percent; 10,000 = 100 %) of `amount`, rounded
/// half up, so 15 % of 999 is 150, not 149.
pub fn percent_of(amount_minor: i64, basis_points: i64) -> i64 {
    let product = amount_minor as i128 * basis_points as i128;
    ((product + 5_000) / 10_000) as i64
}

/// How much a discount takes off a set of applicable order lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountAmount {
    /// Basis points of the applicable subtotal.
    Percentage(i64),
    /// Minor units, once per order, never more than the applicable subtotal.
    Fixed(i64),
}

impl DiscountAmount {
    pub fn off(self, applicable_subtotal_minor: i64) -> i64 {
        match self {
            Self::Percentage(bp) => percent_of(applicable_subtotal_minor, bp),
            Self::Fixed(amount) => amount,
        }
        .clamp(0, applicable_subtotal_minor.max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_canonical() {
        assert_eq!(currency("eur"), Some("EUR"));
        assert_eq!(currency(" JPY "), Some("JPY"));
        assert_eq!(currency("XXX"), None);
        assert_eq!(currency("EURO"), None);
        assert_eq!(exponent("KWD"), Some(3));
        assert_eq!(exponent("JPY"), Some(0));
        // Funds, metals and superseded codes are not offered.
        assert_eq!(currency("CLF"), None);
        assert_eq!(currency("XAU"), None);
        assert_eq!(currency("HRK"), None);
        assert_eq!(exponent("HRK"), Some(2), "still formats old orders");
        assert_eq!(currency("XCG"), Some("XCG"));
    }

    #[test]
    fn formatting() {
        assert_eq!(format(1250, "EUR"), "EUR 12.50");
        assert_eq!(format(5, "USD"), "USD 0.05");
        assert_eq!(format(1500, "JPY"), "JPY 1500");
        assert_eq!(format(1001, "KWD"), "KWD 1.001");
    }

    #[test]
    fn discounts() {
        assert_eq!(percent_of(999, 1500), 150);
        assert_eq!(percent_of(1000, 10_000), 1000);
        assert_eq!(DiscountAmount::Percentage(2_500).off(4000), 1000);
        assert_eq!(DiscountAmount::Fixed(500).off(300), 300, "never below zero");
        assert_eq!(DiscountAmount::Fixed(500).off(3000), 500);
        assert_eq!(percent_of(i64::MAX, 10_000), i64::MAX, "no overflow");
    }
}
