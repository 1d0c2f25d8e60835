//! QR symbols for tickets: the `qrcode` crate's encoder, with the mask chosen
//! here.
//!
//! The standard (ISO/IEC 18004, 7.8.3) has the encoder try all eight masks
//! and keep the one with the lowest penalty. The crate scores them through
//! per-module lookups and closures; in a drop's confirmation emails that
//! scoring was a quarter of the worker's CPU. The same four rules over a
//! flat array of booleans cost a few microseconds per mask.

use qrcode::{
    Color, EcLevel,
    canvas::{Canvas, MaskPattern},
};

const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// A symbol: `width` × `width` modules, row by row, `true` for dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub width: usize,
    pub dark: Vec<bool>,
}

impl Symbol {
    /// The smallest symbol holding `payload` at error correction level M,
    /// with the mask of lowest penalty.
    pub fn encode(payload: &[u8]) -> Result<Self, String> {
        Self::under_every_mask(payload)?
            .into_iter()
            .min_by_key(Self::penalty)
            .ok_or_else(|| "qr: no mask".to_owned())
    }

    /// The smallest symbol holding `payload` at level M, once per mask.
    fn under_every_mask(payload: &[u8]) -> Result<Vec<Self>, String> {
        let qr = |e: qrcode::types::QrError| format!("qr: {e}");
        let bits = qrcode::bits::encode_auto(payload, EcLevel::M).map_err(qr)?;
        let version = bits.version();
        let (data, ec) =
            qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).map_err(qr)?;
        let mut unmasked = Canvas::new(version, EcLevel::M);
        unmasked.draw_all_functional_patterns();
        unmasked.draw_data(&data, &ec);
        let width = usize::try_from(version.width()).map_err(|_| "qr: width".to_owned())?;
        Ok(MASKS
            .iter()
            .map(|&mask| {
                let mut canvas = unmasked.clone();
                canvas.apply_mask(mask);
                let dark = canvas
                    .into_colors()
                    .into_iter()
                    .map(|c| c == Color::Dark)
                    .collect();
                Self { width, dark }
            })
            .collect())
    }

    /// The standard's penalty score (lower reads better).
    pub fn penalty(&self) -> usize {
        self.penalties().iter().sum()
    }

    /// The four rules' points: runs of one colour (N1), 2×2 blocks of one
    /// colour (N2), finder-like patterns (N3), imbalance of dark and light
    /// (N4).
    fn penalties(&self) -> [usize; 4] {
        let w = self.width;
        let at = |x: usize, y: usize| self.dark[y * w + x];
        let (mut runs, mut finders) = (0, 0);
        for across in [true, false] {
            for i in 0..w {
                let module = |j: usize| if across { at(j, i) } else { at(i, j) };
                // 3 for a run of five, 1 for each module beyond.
                let mut run = 1;
                for j in 1..w {
                    if module(j) == module(j - 1) {
                        run += 1;
                    } else {
                        runs += run_penalty(run);
                        run = 1;
                    }
                }
                runs += run_penalty(run);
                // 40 for dark-light-dark×3-light-dark with four light
                // modules before or after it; outside the symbol is light.
                // A window of 4 + 7 + 4 modules slides over the line.
                let mut window = 0u16;
                for j in 0..w + 8 {
                    let dark = (4..w + 4).contains(&j) && module(j - 4);
                    window = ((window << 1) | u16::from(dark)) & 0x7FFF;
                    if j >= 14
                        && (window >> 4) & 0x7F == 0b101_1101
                        && (window >> 11 == 0 || window & 0xF == 0)
                    {
                        finders += 40;
                    }
                }
            }
        }
        let mut blocks = 0;
        for y in 0..w - 1 {
            for x in 0..w - 1 {
                let c = at(x, y);
                if c == at(x + 1, y) && c == at(x, y + 1) && c == at(x + 1, y + 1) {
                    blocks += 3;
                }
            }
        }
        // 10 for every full 5% the dark share is away from half.
        let total = w * w;
        let dark = self.dark.iter().filter(|&&d| d).count();
        let balance = 10 * ((20 * dark).abs_diff(10 * total) / total);
        [runs, blocks, finders, balance]
    }
}

fn run_penalty(run: usize) -> usize {
    if run >= 5 { run - 2 } else { 0 }
}

#[cfg(test)]
mod tests {
    use qrcode::Version;

    use super::*;

    /// The `qrcode` crate's own penalty test symbol (version 1-Q, mask 000),
    /// with the points its tests give each rule.
    #[test]
    fn penalties_match_the_reference_symbol() {
        let mut canvas = Canvas::new(Version::Normal(1), EcLevel::Q);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(
            b"\x20\x5b\x0b\x78\xd1\x72\xdc\x4d\x43\x40\xec\x11\x00",
            b"\xa8\x48\x16\x52\xd9\x36\x9c\x00\x2e\x0f\xb4\x7a\x10",
        );
        canvas.apply_mask(MaskPattern::Checkerboard);
        let dark: Vec<bool> = canvas
            .into_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        // The crate scores balance 2 for it (linear, in 0.5% steps).
        assert_eq!(dark.iter().filter(|&&d| d).count(), 217);
        let [runs, blocks, finders, balance] = Symbol { width: 21, dark }.penalties();
        assert_eq!(runs, 88 + 92);
        assert_eq!(blocks, 90);
        // The crate leaves out the 2 × 9 rows and columns through the three
        // real finder patterns (360 each way); the standard does not.
        assert_eq!(finders, 40 + 720);
        // 217 of 441 dark: within 5% of half.
        assert_eq!(balance, 0);
    }

    #[test]
    fn balance_counts_whole_steps_of_five_percent() {
        let with_dark = |n: usize| {
            let mut dark = vec![false; 100];
            dark[..n].iter_mut().for_each(|d| *d = true);
            Symbol { width: 10, dark }.penalties()[3]
        };
        assert_eq!(with_dark(50), 0);
        assert_eq!(with_dark(45), 10);
        assert_eq!(with_dark(44), 10);
        assert_eq!(with_dark(40), 20);
        assert_eq!(with_dark(61), 20);
        assert_eq!(with_dark(0), 100);
    }

    #[test]
    fn keeps_the_lowest_penalty_mask_of_the_smallest_symbol() {
        let payload = b"BOX1.0192f1c2a3b4c5d6e7f8091a2b3c4d5e.7K9M2P4Q6R8S0T1V3W5X7Y9Z2A.abcdefghijklmnopqrstuv";
        let chosen = Symbol::encode(payload).unwrap();
        let reference = qrcode::QrCode::with_error_correction_level(payload, EcLevel::M).unwrap();
        assert_eq!(chosen.width, reference.width());
        // The chosen one is one of the eight and none scores lower.
        let all = Symbol::under_every_mask(payload).unwrap();
        assert_eq!(all.len(), 8);
        assert!(all.contains(&chosen));
        assert!(all.iter().all(|s| s.penalty() >= chosen.penalty()));
        assert!(all.iter().any(|s| s.penalty() > chosen.penalty()));
    }
}
