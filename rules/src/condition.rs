//! Globs for models and providers, CIDR ranges for source addresses.

use std::net::IpAddr;

/// `*` any run, `?` any one char; ASCII case-insensitive, as model names are compared in
/// FlagWise (lower-cased). A pattern without wildcards is an exact match.
#[derive(Debug, Clone)]
pub(crate) struct Glob(Vec<u8>);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.trim().to_ascii_lowercase().into_bytes())
    }

    pub fn matches(&self, text: &str) -> bool {
        let (p, t) = (&self.0, text.trim().as_bytes());
        // Iterative matcher with one backtrack point: linear in practice, never exponential.
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti].to_ascii_lowercase()) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == b'*' {
                star = Some((pi, ti));
                pi += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

pub(crate) fn any_glob(globs: &[Glob], text: &str) -> bool {
    globs.iter().any(|g| g.matches(text))
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("claude-3-opus*", "claude-3-opus-20240229", true),
            ("claude-3-opus*", "Claude-3-Opus", true),
            ("claude-3-opus*", "claude-3-5-sonnet", false),
            ("gpt-4", "gpt-4", true),
            ("gpt-4", "gpt-4-turbo", false),
            ("gpt-4?", "gpt-4o", true),
            ("*mini*", "o3-mini-high", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn cidrs() {
        let cases = [
            ("10.0.0.0/8", "10.200.1.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("2001:db8::/32", "2001:db8:1::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ];
        for (range, ip, expected) in cases {
            let cidr = Cidr::parse(range).unwrap();
            assert_eq!(
                cidr.contains(ip.parse().unwrap()),
                expected,
                "{range} ∋ {ip}"
            );
        }
        for bad in ["10.0.0.0/33", "banana", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
