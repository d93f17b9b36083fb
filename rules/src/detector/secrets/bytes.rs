//! Byte helpers shared by the handlers: token runs, boundaries, and the checksums some
//! formats carry (CRC32/base62, bech32) or encode (base64).

use super::formats::*;

pub(super) fn left_ok(b: &[u8], s: usize) -> bool {
    s == 0 || !b[s - 1].is_ascii_alphanumeric()
}

pub(super) fn right_ok(b: &[u8], e: usize) -> bool {
    e >= b.len() || !b[e].is_ascii_alphanumeric()
}

/// End of the run of `a` bytes starting at `p`, looking at most `max + 1` bytes so that an
/// over-long run is detected without scanning all of it.
pub(super) fn run(b: &[u8], p: usize, a: Alphabet, max: usize) -> usize {
    let lim = p.saturating_add(max).saturating_add(1).min(b.len());
    let mut e = p.min(lim);
    while e < lim && in_alphabet(a, b[e]) {
        e += 1;
    }
    e
}

/// A body of `min..=max` bytes of `a` at `p`, not glued to an alphanumeric after it.
pub(super) fn body(b: &[u8], p: usize, a: Alphabet, min: usize, max: usize) -> Option<usize> {
    let e = run(b, p, a, max);
    let n = e - p;
    (n >= min && n <= max && right_ok(b, e)).then_some(e)
}

pub(super) fn classes(v: &[u8]) -> usize {
    let up = v.iter().any(u8::is_ascii_uppercase);
    let lo = v.iter().any(u8::is_ascii_lowercase);
    let dg = v.iter().any(u8::is_ascii_digit);
    usize::from(up) + usize::from(lo) + usize::from(dg)
}

pub(super) fn starts(b: &[u8], p: usize, pre: &[u8]) -> bool {
    b.get(p..).is_some_and(|r| r.starts_with(pre))
}

pub(super) fn ends_with_at(b: &[u8], end: usize, suf: &[u8]) -> bool {
    end >= suf.len() && b.get(end - suf.len()..end) == Some(suf)
}

pub(super) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

pub(super) const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

pub(super) fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in data {
        c = CRC_TABLE[((c ^ u32::from(x)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

pub(super) const BASE62: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(super) fn base62_6(mut n: u32) -> [u8; 6] {
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// GitHub / npm checksum: the 30 random chars, then base62(CRC32) zero-padded to 6.
pub(super) fn crc_ok(body: &[u8]) -> bool {
    body.len() == 36 && base62_6(crc32(&body[..30]))[..] == body[30..]
}

pub(super) const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

pub(super) fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut check = 1u32;
    for v in values {
        let top = check >> 25;
        check = ((check & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                check ^= g;
            }
        }
    }
    check
}

/// Validates `hrp` + `1` + `data` (data in bech32 chars, either case) per BIP-173.
pub(super) fn bech32_ok(hrp: &[u8], data: &[u8]) -> bool {
    let mut vals = Vec::with_capacity(data.len());
    for &c in data {
        match BECH32.iter().position(|&x| x == c.to_ascii_lowercase()) {
            Some(i) => vals.push(i as u8),
            None => return false,
        }
    }
    let hrp_l = hrp.iter().map(u8::to_ascii_lowercase);
    let it = hrp_l
        .clone()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp_l.map(|c| c & 31))
        .chain(vals.iter().copied());
    bech32_polymod(it) == 1
}

/// Decodes base64/base64url without padding into `out`; stops at the first invalid byte.
pub(super) fn b64_decode(src: &[u8], out: &mut Vec<u8>) {
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in src {
        let Some(v) = crate::text::base64_digit(c).map(u32::from) else {
            break;
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
}
