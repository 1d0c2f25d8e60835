//! QR symbols for tickets: the `qrcode` crate's encoder and data placement,
//! with the mask chosen here.
//!
//! The standard (ISO/IEC 18004, 7.8.3) has the encoder try all eight masks
//! and keep the one with the lowest penalty. Masked and scored module by
//! module (the crate's way, and ours at first) that was a quarter to a third
//! of the email worker's CPU in a drop. Here every row and column is an
//! integer: a mask flips only data modules, so each masked line is one XOR
//! of lines worked out once per version, and the four rules cost a few
//! instructions per line.

use std::sync::OnceLock;

use qrcode::{
    Color, EcLevel, Version,
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

/// Why a payload has no symbol here.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("qr: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("qr: {0} bytes is too long a payload")]
    TooLong(usize),
    #[error("qr: not a normal QR version")]
    Version,
    #[error("qr: no mask")]
    NoMask,
}

/// A symbol: `width` × `width` modules, row by row, `true` for dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub width: usize,
    pub dark: Vec<bool>,
}

impl Symbol {
    /// The smallest symbol holding `payload` at error correction level M,
    /// with the mask of lowest penalty.
    pub fn encode(payload: &[u8]) -> Result<Self, QrError> {
        let (width, candidates) = under_every_mask(payload)?;
        let best = candidates
            .into_iter()
            .min_by_key(|lines| lines.penalty(width))
            .ok_or(QrError::NoMask)?;
        Ok(best.symbol(width))
    }

    /// The standard's penalty score (lower reads better).
    pub fn penalty(&self) -> usize {
        self.lines().penalty(self.width)
    }

    fn lines(&self) -> Lines {
        Lines::of(&self.dark, self.width)
    }
}

/// The smallest symbol holding `payload` at level M, once per mask (in the
/// order of [`MASKS`]), as lines; and its width.
fn under_every_mask(payload: &[u8]) -> Result<(usize, Vec<Lines>), QrError> {
    let bits = qrcode::bits::encode_auto(payload, EcLevel::M)?;
    let version = bits.version();
    let Version::Normal(number) = version else {
        return Err(QrError::Version);
    };
    let width = usize::try_from(version.width()).map_err(|_| QrError::Version)?;
    if width > MAX_WIDTH {
        return Err(QrError::TooLong(payload.len()));
    }
    let (data, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M)?;
    let frame = FRAMES[usize::try_from(number).map_err(|_| QrError::Version)?]
        .get_or_init(|| Frame::new(version));
    let mut canvas = frame.blank.clone();
    canvas.draw_data(&data, &ec);
    let drawn = Lines::of(&dark_modules(canvas), width);
    Ok((
        width,
        frame
            .masked
            .iter()
            .map(|masked| masked.with_data(&drawn, &frame.data))
            .collect(),
    ))
}

/// Versions 1 to 40; index 0 is unused.
static FRAMES: [OnceLock<Frame>; 41] = [const { OnceLock::new() }; 41];

/// What every symbol of one version shares.
struct Frame {
    /// The function patterns, format information left light, data modules
    /// empty.
    blank: Canvas,
    /// Set where a module holds a data, error correction or remainder bit:
    /// the modules a mask flips.
    data: Lines,
    /// Under each mask, a symbol whose data bits are all light: the function
    /// patterns with that mask's format information, and the mask itself
    /// over the data modules.
    masked: Vec<Lines>,
}

impl Frame {
    fn new(version: Version) -> Self {
        let width = usize::try_from(version.width()).unwrap_or_default();
        let mut blank = Canvas::new(version, EcLevel::M);
        blank.draw_all_functional_patterns();
        // More bits than any version holds: placement stops when the data
        // modules run out, remainder bits included.
        let filled = |byte: u8, mask: MaskPattern| {
            let mut canvas = blank.clone();
            canvas.draw_data(&[byte; 4096], &[]);
            canvas.apply_mask(mask);
            Lines::of(&dark_modules(canvas), width)
        };
        let masked: Vec<Lines> = MASKS.iter().map(|&mask| filled(0, mask)).collect();
        let dark = filled(0xFF, MASKS[0]);
        let data = Lines {
            rows: xor(&masked[0].rows, &dark.rows),
            cols: xor(&masked[0].cols, &dark.cols),
        };
        Self {
            blank,
            data,
            masked,
        }
    }
}

fn dark_modules(canvas: Canvas) -> Vec<bool> {
    canvas
        .into_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect()
}

fn xor(a: &[u128], b: &[u128]) -> Vec<u128> {
    a.iter().zip(b).map(|(a, b)| a ^ b).collect()
}

/// A symbol's rows and columns, each as the bits of an integer: bit `j` is
/// module `j`, 1 for dark.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lines {
    rows: Vec<u128>,
    cols: Vec<u128>,
}

impl Lines {
    fn of(dark: &[bool], w: usize) -> Self {
        Self {
            rows: dark.chunks_exact(w).map(|row| bits(row.iter())).collect(),
            cols: (0..w).map(|x| bits(dark[x..].iter().step_by(w))).collect(),
        }
    }

    /// These lines (a mask over light data) with `drawn`'s data bits
    /// flipped in: masking is an XOR, so it commutes with placing the data.
    fn with_data(&self, drawn: &Self, data: &Self) -> Self {
        let apply = |masked: &[u128], drawn: &[u128], data: &[u128]| -> Vec<u128> {
            masked
                .iter()
                .zip(drawn)
                .zip(data)
                .map(|((m, d), bits)| m ^ (d & bits))
                .collect()
        };
        Self {
            rows: apply(&self.rows, &drawn.rows, &data.rows),
            cols: apply(&self.cols, &drawn.cols, &data.cols),
        }
    }

    fn symbol(&self, width: usize) -> Symbol {
        Symbol {
            width,
            dark: self
                .rows
                .iter()
                .flat_map(|row| (0..width).map(move |x| row >> x & 1 == 1))
                .collect(),
        }
    }

    fn penalty(&self, w: usize) -> usize {
        self.penalties(w).iter().sum()
    }

    /// The four rules' points: runs of one colour (N1), 2×2 blocks of one
    /// colour (N2), finder-like patterns (N3), imbalance of dark and light
    /// (N4).
    fn penalties(&self, w: usize) -> [usize; 4] {
        let (mut runs, mut finders) = (0, 0);
        for &line in self.rows.iter().chain(&self.cols) {
            runs += line_runs(line, w);
            finders += 40 * line_finders(line, w);
        }
        // Two rows: module x and x + 1 alike in each, and x alike in both.
        let pairs = ones(w - 1);
        let blocks: usize = self
            .rows
            .windows(2)
            .map(|r| {
                let alike_across = |l: u128| !(l ^ (l >> 1));
                let block = alike_across(r[0]) & alike_across(r[1]) & !(r[0] ^ r[1]) & pairs;
                3 * block.count_ones() as usize
            })
            .sum();
        // 10 for every full 5% the dark share is away from half.
        let total = w * w;
        let dark: usize = self.rows.iter().map(|r| r.count_ones() as usize).sum();
        let balance = 10 * ((20 * dark).abs_diff(10 * total) / total);
        [runs, blocks, finders, balance]
    }
}

/// Widest symbol scored: a line plus eight light modules fits in a `u128`
/// (version 26, over 1,000 bytes at level M; a ticket needs version 6).
const MAX_WIDTH: usize = 120;

/// The lowest `n` bits set.
fn ones(n: usize) -> u128 {
    if n >= 128 { u128::MAX } else { (1 << n) - 1 }
}

/// A line's modules as the bits of an integer, the first lowest.
fn bits<'a>(modules: impl DoubleEndedIterator<Item = &'a bool>) -> u128 {
    // Shifting by one each step, from the last: a `u128` shift by a
    // variable amount costs several instructions.
    modules
        .rev()
        .fold(0, |line, &dark| (line << 1) | u128::from(dark))
}

/// N1 of one line of `w` modules: 3 for a run of five, 1 for each module
/// beyond. A run of `n ≥ 5` holds `n - 4` windows of five alike, so it
/// scores the windows plus 2 for the window that starts it.
fn line_runs(line: u128, w: usize) -> usize {
    // Bit j: module j is like module j + 1.
    let alike = !(line ^ (line >> 1)) & ones(w - 1);
    let five = alike & (alike >> 1) & (alike >> 2) & (alike >> 3);
    let starts_run = !(alike << 1);
    (five.count_ones() + 2 * (five & starts_run).count_ones()) as usize
}

/// N3 occurrences in one line: dark-light-dark×3-light-dark with four light
/// modules before or after it; outside the symbol is light. Every place is
/// tested at once: bit `s` of `core` is set when the pattern starts at `s`.
fn line_finders(line: u128, w: usize) -> usize {
    // Four light modules each side, so a window of 4 + 7 + 4 fits anywhere.
    let p = line << 4;
    let at = |k: usize| p >> k;
    let core = at(0) & !at(1) & at(2) & at(3) & at(4) & !at(5) & at(6);
    let light4 = !(at(0) | at(1) | at(2) | at(3));
    // Starts with a whole window inside the padded line: 4 ..= w - 3.
    let starts = ones(w - 6) << 4;
    (core & ((light4 << 4) | (light4 >> 7)) & starts).count_ones() as usize
}

#[cfg(test)]
mod tests {
    use qrcode::Version;

    use super::*;

    fn run_penalty(run: usize) -> usize {
        if run >= 5 { run - 2 } else { 0 }
    }

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
        let [runs, blocks, finders, balance] = Lines::of(&dark, 21).penalties(21);
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
            Lines::of(&dark, 10).penalties(10)[3]
        };
        assert_eq!(with_dark(50), 0);
        assert_eq!(with_dark(45), 10);
        assert_eq!(with_dark(44), 10);
        assert_eq!(with_dark(40), 20);
        assert_eq!(with_dark(61), 20);
        assert_eq!(with_dark(0), 100);
    }

    /// The rules read module by module, straight from the standard's text.
    fn penalties_one_module_at_a_time(s: &Symbol) -> [usize; 4] {
        let w = s.width as isize;
        let dark = |x: isize, y: isize| {
            (0..w).contains(&x) && (0..w).contains(&y) && s.dark[(y * w + x) as usize]
        };
        let (mut runs, mut finders, mut blocks) = (0, 0, 0);
        for across in [true, false] {
            let at = |i: isize, j: isize| if across { dark(j, i) } else { dark(i, j) };
            for i in 0..w {
                let mut run = 1;
                for j in 1..=w {
                    if j < w && at(i, j) == at(i, j - 1) {
                        run += 1;
                    } else {
                        runs += run_penalty(run);
                        run = 1;
                    }
                }
                for j in 0..w - 6 {
                    let core = [true, false, true, true, true, false, true];
                    let light = |from: isize| (from..from + 4).all(|k| !at(i, k));
                    if (0..7).all(|k| at(i, j + k) == core[k as usize])
                        && (light(j - 4) || light(j + 7))
                    {
                        finders += 40;
                    }
                }
            }
        }
        for y in 0..w - 1 {
            for x in 0..w - 1 {
                let c = dark(x, y);
                if [(1, 0), (0, 1), (1, 1)]
                    .iter()
                    .all(|(dx, dy)| dark(x + dx, y + dy) == c)
                {
                    blocks += 3;
                }
            }
        }
        let n = s.dark.iter().filter(|d| **d).count();
        let total = (w * w) as usize;
        [
            runs,
            blocks,
            finders,
            10 * ((20 * n).abs_diff(10 * total) / total),
        ]
    }

    /// Payloads whose symbols cover a version without remainder bits (1),
    /// with seven (6), with version information (7 on) and with three
    /// (17).
    const PAYLOADS: [&[u8]; 4] = [
        b"BOX1",
        b"BOX1.0192f1c2a3b4c5d6e7f8091a2b3c4d5e.7K9M2P4Q6R8S0T1V3W5X7Y9Z2A.abcdefghijklmnopqrstuv",
        &[b'x'; 120],
        &[b'x'; 500],
    ];

    /// The crate's own symbol under `mask`, module by module.
    fn the_crates(payload: &[u8], mask: MaskPattern) -> Symbol {
        let bits = qrcode::bits::encode_auto(payload, EcLevel::M).unwrap();
        let version = bits.version();
        let (data, ec) =
            qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
        let mut canvas = Canvas::new(version, EcLevel::M);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&data, &ec);
        canvas.apply_mask(mask);
        Symbol {
            width: usize::try_from(version.width()).unwrap(),
            dark: dark_modules(canvas),
        }
    }

    #[test]
    fn masking_line_by_line_draws_the_crates_symbols() {
        let versions: Vec<i16> = PAYLOADS
            .iter()
            .map(
                |p| match qrcode::bits::encode_auto(p, EcLevel::M).unwrap().version() {
                    Version::Normal(n) => n,
                    Version::Micro(_) => unreachable!("encode_auto makes normal symbols"),
                },
            )
            .collect();
        assert_eq!(versions, [1, 6, 7, 17]);
        for payload in PAYLOADS {
            let (width, candidates) = under_every_mask(payload).unwrap();
            for (lines, mask) in candidates.iter().zip(MASKS) {
                let symbol = lines.symbol(width);
                assert_eq!(symbol, the_crates(payload, mask), "mask {mask:?}");
                assert_eq!(*lines, symbol.lines());
            }
        }
    }

    #[test]
    fn line_arithmetic_scores_like_reading_each_module() {
        for payload in PAYLOADS.iter().copied().chain([&[b'x'; 900][..]]) {
            let (width, candidates) = under_every_mask(payload).unwrap();
            for lines in candidates {
                assert_eq!(
                    lines.penalties(width),
                    penalties_one_module_at_a_time(&lines.symbol(width))
                );
            }
        }
        assert!(matches!(
            Symbol::encode(&[b'x'; 1500]),
            Err(QrError::TooLong(1500))
        ));
    }

    #[test]
    fn keeps_the_lowest_penalty_mask_of_the_smallest_symbol() {
        let payload = PAYLOADS[1];
        let chosen = Symbol::encode(payload).unwrap();
        let reference = qrcode::QrCode::with_error_correction_level(payload, EcLevel::M).unwrap();
        assert_eq!(chosen.width, reference.width());
        // The chosen one is one of the eight and none scores lower.
        let all: Vec<Symbol> = MASKS.iter().map(|&m| the_crates(payload, m)).collect();
        assert!(all.contains(&chosen));
        assert!(all.iter().all(|s| s.penalty() >= chosen.penalty()));
        assert!(all.iter().any(|s| s.penalty() > chosen.penalty()));
    }
}
