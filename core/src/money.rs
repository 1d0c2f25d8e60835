//! Money is an integer count of minor units plus an ISO 4217 currency. Never
//! floats: every amount a buyer sees, pays or gets back is exact.

/// Currencies a ticket can be priced in: ISO 4217's circulating currencies with
/// their minor-unit exponent (JPY has none, KWD has three). Fund and metal codes
/// (CLF, XAU, ...) are left out: nobody sells tickets in them.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2),
    ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2),
    ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0),
    ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0),
    ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2),
    ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2),
    ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2),
    ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2),
    ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2),
    ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2),
    ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3),
    ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0),
    ("USD", 2), ("UYU", 2), ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0),
    ("WST", 2), ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2),
    ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

/// The canonical (upper-case) code if `code` names a supported currency.
pub fn currency(code: &str) -> Option<&'static str> {
    let upper = code.trim().to_ascii_uppercase();
    CURRENCIES
        .iter()
        .find(|(c, _)| *c == upper)
        .map(|(c, _)| *c)
}

/// Digits after the decimal point, e.g. 2 for EUR, 0 for JPY.
pub fn exponent(code: &str) -> Option<u8> {
    CURRENCIES.iter().find(|(c, _)| *c == code).map(|(_, e)| *e)
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
        assert!(
            CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
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
