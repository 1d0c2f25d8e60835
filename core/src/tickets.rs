//! Ticket codes and the QR payload gate scanners read.
//!
//! A code is 128 random bits (Crockford base32, 26 characters): unguessable on
//! its own. The QR payload adds an HMAC with the server secret, so a scanner
//! that is offline can still tell a forged ticket from a real one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub fn new_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut n = u128::from_be_bytes(bytes);
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

fn sign(secret: &[u8], ticket_id: Uuid, code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(b"ticket-qr:");
    mac.update(ticket_id.as_bytes());
    mac.update(code.as_bytes());
    // 128 bits of the tag: plenty against forgery, keeps the QR small.
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
}

/// `BOX1.<ticket id>.<code>.<signature>`
pub fn qr_payload(secret: &[u8], ticket_id: Uuid, code: &str) -> String {
    format!(
        "BOX1.{}.{code}.{}",
        ticket_id.simple(),
        sign(secret, ticket_id, code)
    )
}

/// The ticket id and code of a genuine payload.
pub fn verify_qr_payload(secret: &[u8], payload: &str) -> Option<(Uuid, String)> {
    let mut parts = payload.split('.');
    let (Some("BOX1"), Some(id), Some(code), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let id = Uuid::parse_str(id).ok()?;
    let expected = sign(secret, id, code);
    bool::from(expected.as_bytes().ct_eq(sig.as_bytes())).then(|| (id, code.to_owned()))
}

/// Why a scan names no ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// A QR payload whose signature is not ours: forged or altered.
    #[error("the QR payload's signature does not match")]
    Forged,
    /// Neither a QR payload nor a ticket code.
    #[error("neither a ticket's QR payload nor its code")]
    Unreadable,
}

/// What a door scanner read: a signed QR payload, or a ticket code typed
/// in (any case, spaces and dashes ignored, Crockford's look-alikes `O`,
/// `I`, `L` read as digits).
pub fn read_scan(secret: &[u8], raw: &str) -> Result<crate::models::Scanned, ScanError> {
    let raw = raw.trim();
    if raw.starts_with("BOX1.") {
        let (id, code) = verify_qr_payload(secret, raw).ok_or(ScanError::Forged)?;
        return Ok(crate::models::Scanned {
            code,
            ticket_id: Some(id),
        });
    }
    let code: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    if code.len() == 26 && code.bytes().all(|b| CROCKFORD.contains(&b)) {
        Ok(crate::models::Scanned {
            code,
            ticket_id: None,
        })
    } else {
        Err(ScanError::Unreadable)
    }
}

/// The payload as a PNG QR code (black on white, 4-module quiet zone), one
/// bit per pixel: every confirmation email renders one per ticket, and at
/// eight bits per pixel filtering and compressing the image was the largest
/// cost of sending it.
pub fn qr_png(payload: &str, scale: u32) -> Result<Vec<u8>, QrPngError> {
    const QUIET: u32 = 4;
    let symbol = crate::qr::Symbol::encode(payload.as_bytes())?;
    let modules = symbol.width as u32;
    let side = (modules + 2 * QUIET) * scale;
    let row_bytes = side.div_ceil(8) as usize;
    // 1 is white at one bit per pixel.
    let mut pixels = vec![0xFFu8; row_bytes * side as usize];
    for (my, row) in (0..).zip(symbol.dark.chunks_exact(symbol.width)) {
        // The module row's first pixel row is drawn, the others copied.
        let top = ((my + QUIET) * scale) as usize * row_bytes;
        let band = &mut pixels[top..top + scale as usize * row_bytes];
        let (first, copies) = band.split_at_mut(row_bytes);
        for (mx, _) in (0..).zip(row).filter(|(_, dark)| **dark) {
            for x in (mx + QUIET) * scale..(mx + QUIET + 1) * scale {
                first[x as usize / 8] &= !(0x80 >> (x % 8));
            }
        }
        for copy in copies.chunks_exact_mut(row_bytes) {
            copy.copy_from_slice(first);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

/// Why a QR code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrPngError {
    #[error(transparent)]
    Symbol(#[from] crate::qr::QrError),
    #[error("png: {0}")]
    Png(#[from] png::EncodingError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_read_payloads_and_typed_codes_and_refuse_the_rest() {
        let secret = b"secret";
        let id = Uuid::now_v7();
        let code = new_code();
        let payload = qr_payload(secret, id, &code);
        let scanned = read_scan(secret, &payload).unwrap();
        assert_eq!(
            (scanned.ticket_id, scanned.code.as_str()),
            (Some(id), code.as_str())
        );
        assert_eq!(
            read_scan(b"other", &payload).unwrap_err(),
            ScanError::Forged
        );
        let typed = format!(" {}-{} ", &code[..13], &code[13..]).to_lowercase();
        let scanned = read_scan(secret, &typed).unwrap();
        assert_eq!(
            (scanned.ticket_id, scanned.code.as_str()),
            (None, code.as_str())
        );
        let looks_alike = "O".repeat(26);
        assert_eq!(
            read_scan(secret, &looks_alike).unwrap().code,
            "0".repeat(26)
        );
        for garbage in ["", "hello", "U".repeat(26).as_str(), "BOX1.x.y.z"] {
            assert!(read_scan(secret, garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn codes_are_long_random_and_distinct() {
        let a = new_code();
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|b| CROCKFORD.contains(&b)));
        assert_ne!(a, new_code());
    }

    #[test]
    fn payloads_verify_and_forgeries_do_not() {
        let id = Uuid::now_v7();
        let p = qr_payload(b"secret", id, "ABC");
        assert_eq!(verify_qr_payload(b"secret", &p), Some((id, "ABC".into())));
        assert_eq!(verify_qr_payload(b"other", &p), None);
        assert_eq!(verify_qr_payload(b"secret", &p.replace("ABC", "ABD")), None);
        assert_eq!(verify_qr_payload(b"secret", "BOX1.x.y"), None);
    }

    #[test]
    fn the_png_shows_every_module_of_the_code_and_scans_back() {
        let id = Uuid::now_v7();
        let payload = qr_payload(b"secret", id, &new_code());
        let scale = 3;
        let png = qr_png(&payload, scale).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(
            (frame.color_type, frame.bit_depth),
            (png::ColorType::Grayscale, png::BitDepth::One)
        );
        let symbol = crate::qr::Symbol::encode(payload.as_bytes()).unwrap();
        let modules = symbol.width as u32;
        assert_eq!(frame.width, (modules + 8) * scale);
        let dark_at = |x: u32, y: u32| {
            let byte = pixels[y as usize * frame.line_size + x as usize / 8];
            byte & (0x80 >> (x % 8)) == 0
        };
        // Every pixel of every module, and the quiet zone all white.
        for y in 0..frame.height {
            for x in 0..frame.width {
                let (mx, my) = ((x / scale).wrapping_sub(4), (y / scale).wrapping_sub(4));
                let expected =
                    mx < modules && my < modules && symbol.dark[(my * modules + mx) as usize];
                assert_eq!(dark_at(x, y), expected, "pixel ({x}, {y})");
            }
        }
        // And a QR reader gets the payload back from the pixels.
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(
            frame.width as usize,
            frame.height as usize,
            |x, y| if dark_at(x as u32, y as u32) { 0 } else { 255 },
        );
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, payload);
        assert_eq!(
            verify_qr_payload(b"secret", &content).map(|(t, _)| t),
            Some(id)
        );
    }
}
