//! placeholder until the secret formats land
#[derive(Debug, Clone, Default)]
pub struct SecretScanner;
impl SecretScanner {
    pub fn new() -> SecretScanner {
        SecretScanner
    }
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::empty()
    }
    pub fn id(&self, _format: u16) -> &'static str {
        ""
    }
    pub fn index_of(&self, _id: &str) -> Option<u16> {
        None
    }
    pub fn scan(&self, _text: &str, _out: &mut Vec<(u16, usize, usize)>) {}
}
