//! The platform's fee on each paid order: a percentage of what was paid
//! plus a fixed amount per ticket in the order's currency, rounded half to
//! even in minor units, never more than was paid. It is taken when the
//! order is paid and kept if the order is refunded later (the organizer's
//! refunds, and cancellations, come out of the organizer's share).

use std::collections::BTreeMap;

/// `PLATFORM_FEE_PERCENT` (e.g. `2.5`) and `PLATFORM_FEE_FIXED` (e.g.
/// `EUR:50,USD:50`: minor units per ticket).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlatformFee {
    /// Hundredths of a percent: 250 is 2.5 %.
    pub basis_points: i64,
    /// Per ticket, by currency; a currency not listed pays none.
    pub fixed_per_ticket: BTreeMap<String, i64>,
}

/// A fee setting that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    #[error("a percentage from 0 to 100 with at most two decimals, got {0:?}")]
    Percent(String),
    #[error("`CUR:minor` pairs separated by commas (EUR:50,USD:45), got {0:?}")]
    Fixed(String),
}

impl PlatformFee {
    pub fn parse(percent: &str, fixed: &str) -> Result<Self, FeeError> {
        Ok(Self {
            basis_points: parse_percent(percent)?,
            fixed_per_ticket: parse_fixed(fixed)?,
        })
    }

    /// The fee on `paid_minor` for `tickets` tickets in `currency`.
    pub fn fee(&self, paid_minor: i64, tickets: i64, currency: &str) -> i64 {
        if paid_minor <= 0 {
            return 0;
        }
        let percent = half_even(
            i128::from(paid_minor) * i128::from(self.basis_points),
            10_000,
        );
        let fixed = self.fixed_per_ticket.get(currency).copied().unwrap_or(0) * tickets;
        (percent as i64 + fixed).min(paid_minor)
    }
}

/// `n / d` rounded half to even (`d` > 0, `n` ≥ 0).
fn half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q % 2),
    }
}

fn parse_percent(text: &str) -> Result<i64, FeeError> {
    let bad = || FeeError::Percent(text.to_owned());
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !(whole.chars().chain(frac.chars())).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let basis_points = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    if basis_points > 10_000 {
        return Err(bad());
    }
    Ok(basis_points)
}

fn parse_fixed(text: &str) -> Result<BTreeMap<String, i64>, FeeError> {
    let bad = || FeeError::Fixed(text.to_owned());
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (currency, minor) = pair.split_once(':').ok_or_else(bad)?;
            let currency = crate::money::currency(currency).ok_or_else(bad)?;
            let minor: i64 = minor.trim().parse().map_err(|_| bad())?;
            if minor < 0 {
                return Err(bad());
            }
            Ok((currency.to_owned(), minor))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_half_to_even_and_never_exceed_the_payment() {
        let fee = PlatformFee::parse("2.5", "EUR:50,usd:30").unwrap();
        assert_eq!(fee.basis_points, 250);
        // (paid, tickets, currency, fee)
        let cases = [
            (10_000, 1, "EUR", 250 + 50),
            (10_000, 2, "USD", 250 + 60),
            (10_000, 3, "GBP", 250), // no fixed part for GBP
            (20, 1, "GBP", 0),       // 0.5 → 0 (even)
            (60, 1, "GBP", 2),       // 1.5 → 2 (even)
            (100, 1, "GBP", 2),      // 2.5 → 2 (even)
            (140, 1, "GBP", 4),      // 3.5 → 4 (even)
            (61, 1, "GBP", 2),       // 1.525 → 2
            (30, 1, "EUR", 30),      // 1 + 50 capped at what was paid
            (0, 4, "EUR", 0),        // free orders pay nothing
        ];
        for (paid, tickets, currency, expected) in cases {
            assert_eq!(
                fee.fee(paid, tickets, currency),
                expected,
                "{paid} {tickets} {currency}"
            );
        }
        let none = PlatformFee::default();
        assert_eq!(none.fee(10_000, 3, "EUR"), 0);
    }

    #[test]
    fn settings_parse_or_say_what_is_wrong() {
        assert_eq!(PlatformFee::parse("0", "").unwrap(), PlatformFee::default());
        assert_eq!(PlatformFee::parse("12.75", "").unwrap().basis_points, 1275);
        assert_eq!(PlatformFee::parse("3.1", "").unwrap().basis_points, 310);
        for percent in ["", "-1", "2.555", "abc", "100.01", "1e2", ".5"] {
            assert!(PlatformFee::parse(percent, "").is_err(), "{percent:?}");
        }
        for fixed in ["EUR", "EUR:x", "XXX:5", "EUR:-1", "EUR50"] {
            assert!(PlatformFee::parse("1", fixed).is_err(), "{fixed:?}");
        }
    }
}
