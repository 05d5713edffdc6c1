//! ITU-T G.711 companding: A-law (PCMA, what Chinese carriers send) and µ-law (PCMU).
//!
//! Encoding follows the segment algorithm of the ITU reference and Sun's `g711.c`, on 16-bit
//! linear samples (the 13/14-bit codec range scaled up, so decoded values are multiples of 8/4).
//! Decoding is a lookup in 256-entry tables computed at compile time. Every input is valid:
//! nothing here can fail or panic.

/// Mask for the sign bit of an encoded byte.
const SIGN_BIT: u8 = 0x80;
/// Mask for the 4-bit quantisation step inside a segment.
const QUANT_MASK: u8 = 0x0F;
/// Position of the 3-bit segment number.
const SEG_SHIFT: u32 = 4;
/// Upper ends of the A-law segments, on the 13-bit magnitude.
const SEG_A_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
/// Upper ends of the µ-law segments, on the biased 14-bit magnitude.
const SEG_U_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// µ-law bias added before the segment search (0x84 on the 16-bit scale).
const ULAW_BIAS: i32 = 0x84;
/// µ-law clip level on the 14-bit magnitude, so the bias cannot overflow the last segment.
const ULAW_CLIP: i32 = 8159;

/// Index of the first segment whose upper end is at least `value`; 8 when above them all.
const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if value <= ends[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// Encodes one 16-bit linear sample as A-law. Zero encodes as 0xD5 (bits inverted at even places).
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, &SEG_A_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let aval = ((seg as u8) << SEG_SHIFT) | ((pcm >> shift) as u8 & QUANT_MASK);
    aval ^ mask
}

/// Decodes one A-law byte to the middle of its quantisation interval.
const fn alaw_decode_calc(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & QUANT_MASK) as i32) << 4;
    let seg = ((a & 0x70) >> SEG_SHIFT) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & SIGN_BIT != 0 { t } else { -t }) as i16
}

/// Encodes one 16-bit linear sample as µ-law. Zero encodes as 0xFF.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 2;
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(pcm, &SEG_U_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let uval = ((seg as u8) << SEG_SHIFT) | ((pcm >> (seg + 1)) as u8 & QUANT_MASK);
    uval ^ mask
}

/// Decodes one µ-law byte to the middle of its quantisation interval.
const fn ulaw_decode_calc(byte: u8) -> i16 {
    let u = !byte;
    let t = ((((u & QUANT_MASK) as i32) << 3) + ULAW_BIAS) << ((u & 0x70) >> SEG_SHIFT);
    (if u & SIGN_BIT != 0 { ULAW_BIAS - t } else { t - ULAW_BIAS }) as i16
}

/// Builds the A-law decode table at compile time (const fns cannot call through pointers).
const fn alaw_table() -> [i16; 256] {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = alaw_decode_calc(i as u8);
        i += 1;
    }
    out
}

/// Builds the µ-law decode table at compile time.
const fn ulaw_table() -> [i16; 256] {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = ulaw_decode_calc(i as u8);
        i += 1;
    }
    out
}

/// A-law byte → linear sample; decoding is the hot path, so it is a table.
static ALAW_TABLE: [i16; 256] = alaw_table();
/// µ-law byte → linear sample.
static ULAW_TABLE: [i16; 256] = ulaw_table();

/// Decodes one A-law byte to a 16-bit linear sample.
pub fn alaw_decode(byte: u8) -> i16 {
    ALAW_TABLE[usize::from(byte)]
}

/// Decodes one µ-law byte to a 16-bit linear sample.
pub fn ulaw_decode(byte: u8) -> i16 {
    ULAW_TABLE[usize::from(byte)]
}

/// Appends the A-law encoding of `samples` to `out` (one byte per sample).
pub fn encode_alaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| alaw_encode(s)));
}

/// Appends the decoded A-law `bytes` to `out` (one sample per byte).
pub fn decode_alaw(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(bytes.iter().map(|&b| alaw_decode(b)));
}

/// Appends the µ-law encoding of `samples` to `out` (one byte per sample).
pub fn encode_ulaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| ulaw_encode(s)));
}

/// Appends the decoded µ-law `bytes` to `out` (one sample per byte).
pub fn decode_ulaw(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(bytes.iter().map(|&b| ulaw_decode(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        // Full scale: A-law 0xAA/0x2A and µ-law 0x80/0x00 are the largest magnitudes.
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
    }

    #[test]
    fn tables_match_the_calculation() {
        for b in 0..=255u8 {
            assert_eq!(alaw_decode(b), alaw_decode_calc(b));
            assert_eq!(ulaw_decode(b), ulaw_decode_calc(b));
        }
    }

    /// Quantisation error is at most half a step (8 near zero, then about 1/32 of the magnitude
    /// for A-law, 1/16 for µ-law, whose shifts also truncate negatives by up to 3); clipping at
    /// full scale stays inside that.
    #[test]
    fn round_trip_error_is_bounded_over_the_full_range() {
        for x in i16::MIN..=i16::MAX {
            let mag = i32::from(x).abs();
            let ea = (i32::from(alaw_decode(alaw_encode(x))) - i32::from(x)).abs();
            assert!(ea <= (mag / 32).max(8) + 1, "A-law {x}: error {ea}");
            let eu = (i32::from(ulaw_decode(ulaw_encode(x))) - i32::from(x)).abs();
            assert!(eu <= (mag / 16).max(8) + 4, "µ-law {x}: error {eu}");
        }
    }

    #[test]
    fn every_byte_survives_decode_then_encode() {
        for b in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(b)), b, "A-law {b:#04x}");
            // µ-law has two zeros; negative zero (0x7F) re-encodes as positive zero (0xFF).
            let expect = if b == 0x7F { 0xFF } else { b };
            assert_eq!(ulaw_encode(ulaw_decode(b)), expect, "µ-law {b:#04x}");
        }
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut prev_a = alaw_decode(alaw_encode(i16::MIN));
        let mut prev_u = ulaw_decode(ulaw_encode(i16::MIN));
        for x in i16::MIN..=i16::MAX {
            let a = alaw_decode(alaw_encode(x));
            let u = ulaw_decode(ulaw_encode(x));
            assert!(a >= prev_a && u >= prev_u, "not monotonic at {x}");
            (prev_a, prev_u) = (a, u);
        }
    }

    #[test]
    fn slice_helpers_append() {
        let samples = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        let mut bytes = vec![0x42];
        encode_alaw(&samples, &mut bytes);
        assert_eq!(bytes.len(), 6);
        let mut back = Vec::new();
        decode_alaw(&bytes[1..], &mut back);
        assert_eq!(back, samples.iter().map(|&s| alaw_decode(alaw_encode(s))).collect::<Vec<_>>());
        let mut ub = Vec::new();
        encode_ulaw(&samples, &mut ub);
        let mut uback = Vec::new();
        decode_ulaw(&ub, &mut uback);
        assert_eq!(uback, samples.iter().map(|&s| ulaw_decode(ulaw_encode(s))).collect::<Vec<_>>());
    }
}
